package loadgen

import (
	"math/bits"
	"time"
)

// histogram is a log-linear (HDR-like) latency histogram in nanoseconds:
// values below 2^subBits are counted exactly, larger ones in buckets of
// relative width at most 2^-(subBits-1) (under 1 %). It needs no
// allocation per sample, so each receiver keeps its own and they are
// merged at the end.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    int64
	min    int64
	total  int64
}

const (
	subBits     = 8 // 256 exact values, then 128 sub-buckets per power of two
	subHalf     = 1 << (subBits - 1)
	maxShift    = 40 // values up to ~2^48 ns (3 days) are bucketed; larger ones are clamped
	histBuckets = 1<<subBits + maxShift*subHalf
)

func bucket(v int64) int {
	if v < 1<<subBits {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits // ≥ 1
	if shift > maxShift {
		return histBuckets - 1
	}
	return 1<<subBits + (shift-1)*subHalf + int(uint64(v)>>shift) - subHalf
}

// upper is the largest value counted in bucket i.
func upper(i int) int64 {
	if i < 1<<subBits {
		return int64(i)
	}
	shift := (i-1<<subBits)/subHalf + 1
	sub := (i-1<<subBits)%subHalf + subHalf
	return int64(sub+1)<<shift - 1
}

func (h *histogram) record(v int64) {
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.counts[bucket(v)]++
	h.n++
	h.total += v
	h.max = max(h.max, v)
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.n += o.n
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the value at or below which a fraction q of the samples
// lie (to the bucket's upper bound, never above the maximum).
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(upper(i), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.total / int64(h.n))
}
