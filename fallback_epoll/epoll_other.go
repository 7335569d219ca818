//go:build !linux

package epoll

import (
	"errors"
	"time"
)

// Event is one readiness report.
type Event struct {
	Events uint32
	Data   uint64
}

// Poller is unavailable outside Linux.
type Poller struct{}

// New reports errors.ErrUnsupported outside Linux.
func New(maxEvents int) (*Poller, error) { return nil, errors.ErrUnsupported }

// Wait is unavailable outside Linux.
func (p *Poller) Wait(dst []Event, timeout time.Duration) ([]Event, error) {
	return dst, errors.ErrUnsupported
}

// Close does nothing outside Linux.
func (p *Poller) Close() error { return nil }
