//go:build !linux

package uring

import "errors"

// Config sets up a Ring.
type Config struct {
	Entries   uint32
	CQEntries uint32
	Flags     uint32
}

// Ring is unavailable outside Linux.
type Ring struct{}

// New reports errors.ErrUnsupported outside Linux.
func New(cfg Config) (*Ring, error) { return nil, errors.ErrUnsupported }

// Close does nothing outside Linux.
func (r *Ring) Close() error { return nil }
