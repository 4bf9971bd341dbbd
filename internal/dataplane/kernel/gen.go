package kernel

// The BPF program is compiled by clang through bpf2go; the object and its
// Go bindings (lisp_bpfel.go, lisp_bpfel.o) are committed so that go build
// needs no clang. scripts/test regenerates them when clang is present and
// fails if they differ from the committed ones.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -go-package kernel -output-stem lisp lisp bpf/lisp.c -- -I/usr/include/x86_64-linux-gnu
