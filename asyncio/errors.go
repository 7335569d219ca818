package asyncio

import "os"

var errDeadline = os.ErrDeadlineExceeded
