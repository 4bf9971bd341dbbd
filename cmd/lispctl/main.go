// Command lispctl is the lispd operator CLI: it talks to a running lispd
// over its admin socket and decodes LISP packets offline.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv}))
}
