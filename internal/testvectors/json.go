package testvectors

import (
	"encoding/hex"
	"encoding/json"
	"testing"
)

// File is a *.vectors.json file: what tshark saw in each frame of the
// capture named by Source (relative to the JSON file).
type File struct {
	Source  string   `json:"source"`
	Vectors []Vector `json:"vectors"`
}

// Vector is one frame of a capture as tshark decoded it.
type Vector struct {
	Frame     int     `json:"frame"` // 1-based, as in Wireshark
	Src       string  `json:"src"`   // address:port
	Dst       string  `json:"dst"`
	LispTypes []int   `json:"lisp_types"` // outer type, then the ECM's inner type
	DataFlags *string `json:"data_flags"` // set only for a LISP data packet, e.g. "0x88"
	Info      string  `json:"info"`       // tshark's one-line summary
	// PayloadHex is the UDP payload; Payload is the same bytes, decoded by JSON.
	PayloadHex string `json:"udp_payload_hex"`
	Payload    []byte `json:"-"`
}

// JSON reads one *.vectors.json file of the corpus, e.g.
// "oor/oor-capture.vectors.json", failing the test if it is missing or
// malformed.
func JSON(tb testing.TB, name string) File {
	tb.Helper()
	var f File
	if err := json.Unmarshal(Read(tb, name), &f); err != nil {
		tb.Fatalf("test vector %s: %v", name, err)
	}
	for i := range f.Vectors {
		v := &f.Vectors[i]
		b, err := hex.DecodeString(v.PayloadHex)
		if err != nil {
			tb.Fatalf("test vector %s frame %d: udp_payload_hex: %v", name, v.Frame, err)
		}
		v.Payload = b
	}
	return f
}
