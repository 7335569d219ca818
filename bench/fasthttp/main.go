// Command fasthttp is the github.com/valyala/fasthttp hello world that the
// bench's wrk stage compares examples/httpd with. It is its own module, so
// that corio does not depend on fasthttp: the bench builds it when the
// module proxy (or the module cache) can provide fasthttp, and skips it with
// a note otherwise.
package main

import (
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address host:port")
	flag.Parse()
	body := []byte("Hello, World!")
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/plain")
			ctx.SetBody(body)
		},
		Name: "fasthttp",
	}
	log.Fatal(s.ListenAndServe(*addr))
}
