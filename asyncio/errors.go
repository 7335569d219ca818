package asyncio

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

var errDeadline = os.ErrDeadlineExceeded

func unsafePointer(p *unix.RawSockaddrAny) unsafe.Pointer { return unsafe.Pointer(p) }
