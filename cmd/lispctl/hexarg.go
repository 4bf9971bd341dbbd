package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// parseHex reads the --hex argument. People paste hex from many tools, so
// whitespace and colons anywhere are ignored, and one leading 0x (or 0X)
// is allowed.
func parseHex(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', ':':
			return -1
		}
		return r
	}, s)
	if clean == "" {
		return nil, errors.New("no hex digits")
	}
	b, err := hex.DecodeString(clean)
	if err != nil {
		var bad hex.InvalidByteError
		if errors.As(err, &bad) {
			return nil, fmt.Errorf("%q is not a hex digit", rune(bad))
		}
		if errors.Is(err, hex.ErrLength) {
			return nil, fmt.Errorf("odd number of hex digits (%d)", len(clean))
		}
		return nil, err
	}
	return b, nil
}
