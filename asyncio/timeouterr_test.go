package asyncio_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// TimeoutError says it matches context.DeadlineExceeded and that its
// Timeout() reports true "like net's timeout errors". Both
// context.DeadlineExceeded and os.ErrDeadlineExceeded are net.Errors, so
// the usual idiom `var ne net.Error; errors.As(err, &ne) && ne.Timeout()`
// finds them; TimeoutError lacked net.Error's Temporary method, so the idiom
// missed WithTimeout's timeouts (a Dial wrapped in WithTimeout was not
// recognised as a timeout by code written for net.DialTimeout).
func TestTimeoutErrorIsANetError(t *testing.T) {
	var ne net.Error
	if !errors.As(context.DeadlineExceeded, &ne) || !errors.As(os.ErrDeadlineExceeded, &ne) {
		t.Fatal("oracle: the deadline sentinels are net.Errors")
	}
	conform(t, func(_ *testing.T, task *asyncio.Task) error {
		err := asyncio.WithTimeout(task, -time.Second, func(t *asyncio.Task) error { return t.Checkpoint() })
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("WithTimeout in the past: %v", err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return fmt.Errorf("WithTimeout's error %T is not a net.Error with Timeout() true", err)
		}
		return nil
	})
}
