package config

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/lispd/lispd/internal/yamlstrict"
)

// Error is one problem in a configuration file, at the line (and column)
// of the value or key at fault.
type Error struct {
	File   string
	Line   int // 1-based; 0 when the problem concerns the whole file
	Column int // 1-based; 0 when unknown
	Msg    string
}

// Error formats e as "FILE:LINE: message", the form editors and `lispd
// check` users can jump to; "FILE: message" when there is no line.
func (e Error) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Errors is every problem found in a configuration, in line order.
type Errors []Error

// Error prints one problem per line.
func (es Errors) Error() string { return yamlstrict.Lines(es) }

// sort puts the errors in line order; errors on one line keep the order
// they were found in, which follows the document.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}
