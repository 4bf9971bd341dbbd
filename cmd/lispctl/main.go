// Command lispctl is the lispd operator CLI: it talks to a running lispd
// over its admin socket and decodes LISP packets offline.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// An interrupt stops lig and bench early; bench still prints its report.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv, ctx: ctx})
	stop()
	os.Exit(code)
}
