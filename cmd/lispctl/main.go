// Command lispctl is the lispd operator CLI: it talks to a running lispd
// over its admin socket and decodes LISP packets offline.
package main

import (
	"context"
	"os"

	"github.com/lispd/lispd/internal/cli"
)

func main() {
	// An interrupt stops lig and bench early; bench still prints its report.
	cli.Main(func(ctx context.Context) int {
		return run(os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv, ctx: ctx})
	})
}
