package lispsec

import (
	"errors"

	"github.com/lispd/lispd/internal/stats"
)

// Why a LISP-SEC step failed; test with errors.Is. Reason gives each its
// counter label.
var (
	// ErrUnsigned: a Map-Reply to a protected Map-Request without S or AD.
	ErrUnsigned = errors.New("lisp-sec: reply not signed")
	// ErrMalformed: the AD does not decode, or is not the received bytes.
	ErrMalformed = errors.New("lisp-sec: malformed authentication data")
	// ErrReplay: the reply's nonce is not the request's, or the request
	// was already answered (RFC 9303 §7.6).
	ErrReplay = errors.New("lisp-sec: nonce does not match a pending request")
	// ErrPKTAD: the PKT HMAC does not verify with the MS-OTK derived from
	// our ITR-OTK: the Map-Reply was altered on the way, or signed by
	// someone without the OTK (a forged reply, or a wrong OTK).
	ErrPKTAD = errors.New("lisp-sec: Map-Reply HMAC (PKT-AD) does not verify")
	// ErrEIDAD: the PKT HMAC verifies but the Map-Server's EID HMAC does
	// not: the ETR, which holds the MS-OTK, altered the EID-AD (its
	// prefixes, the MS-AD HMAC or its IDs) to overclaim.
	ErrEIDAD = errors.New("lisp-sec: EID-AD HMAC (MS-AD) does not verify")
	// ErrOTK: the key wrap integrity check failed: a wrong pre-shared
	// secret, a wrong nonce or an altered OTK-AD.
	ErrOTK = errors.New("lisp-sec: one-time key does not unwrap")
	// ErrNoKey: no pre-shared secret for the Key ID.
	ErrNoKey = errors.New("lisp-sec: no key for the key ID")
	// ErrNullWrap: an OTK in clear where the path is not otherwise
	// protected (RFC 9303 §6.4, §6.5 step 2: MUST drop).
	ErrNullWrap = errors.New("lisp-sec: unencrypted one-time key refused")
	// ErrHMACID, ErrKDFID: the reply used another HMAC or KDF than the
	// request asked for (RFC 9303 §6.9: MUST discard).
	ErrHMACID = errors.New("lisp-sec: HMAC ID differs from the requested one")
	ErrKDFID  = errors.New("lisp-sec: KDF ID differs from the requested one")
	// ErrUnsupported: an HMAC, KDF or key wrap ID we do not implement.
	ErrUnsupported = errors.New("lisp-sec: unsupported algorithm")
)

var reasons = []struct {
	err   error
	label string
}{
	{ErrUnsigned, "unsigned"}, {ErrMalformed, "malformed"}, {ErrReplay, "replay"},
	{ErrPKTAD, "pkt-ad"}, {ErrEIDAD, "eid-ad"}, {ErrOTK, "otk"}, {ErrNoKey, "no-key"},
	{ErrNullWrap, "null-wrap"}, {ErrHMACID, "hmac-id"}, {ErrKDFID, "kdf-id"},
	{ErrUnsupported, "unsupported"},
}

// Reason is the metric label of a LISP-SEC failure ("eid-ad", "replay",
// ...), "other" for an error that is none of this package's.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "other"
}

// Drops counts failures by Reason under one metric, a counter per reason
// it was made with and "other" for the rest, so every drop is counted.
type Drops map[string]*stats.Counter

// NewDrops registers subsystem_name{reason} for the reasons of errs and
// "other".
func NewDrops(reg *stats.Registry, subsystem, name, help string, errs ...error) Drops {
	d := Drops{}
	for _, label := range append(labels(errs), "other") {
		d[label] = reg.Counter(stats.Desc{Subsystem: subsystem, Name: name, Help: help, Labels: [][2]string{{"reason", label}}})
	}
	return d
}

func labels(errs []error) []string {
	var out []string
	for _, e := range errs {
		out = append(out, Reason(e))
	}
	return out
}

// Count counts err under its reason.
func (d Drops) Count(err error) {
	if c, ok := d[Reason(err)]; ok {
		c.Inc()
		return
	}
	d["other"].Inc()
}
