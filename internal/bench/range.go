package bench

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// ErrRange reports a knob value that is not a number or a "min:max" range.
var ErrRange = errors.New("bench: bad range")

// Range is a knob's value: a single number (Min == Max) or an inclusive
// "min:max" range from which each connection rolls its own value.
type Range struct {
	Min, Max float64
}

// Fixed returns the range holding only v.
func Fixed(v float64) Range { return Range{Min: v, Max: v} }

// ParseRange parses "N" or "MIN:MAX" (decimal numbers, MIN <= MAX, both
// finite and not negative).
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	loText, hiText, isRange := strings.Cut(s, ":")
	lo, err := parseBound(loText)
	if err != nil {
		return Range{}, fmt.Errorf("%w %q: %v", ErrRange, s, err)
	}
	hi := lo
	if isRange {
		if hi, err = parseBound(hiText); err != nil {
			return Range{}, fmt.Errorf("%w %q: %v", ErrRange, s, err)
		}
	}
	if lo > hi {
		return Range{}, fmt.Errorf("%w %q: min is above max", ErrRange, s)
	}
	return Range{Min: lo, Max: hi}, nil
}

func parseBound(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("want N or MIN:MAX")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q must be a finite number of at least 0", s)
	}
	return v, nil
}

// String formats the range as ParseRange reads it.
func (r Range) String() string {
	lo := strconv.FormatFloat(r.Min, 'g', -1, 64)
	if r.Min == r.Max {
		return lo
	}
	return lo + ":" + strconv.FormatFloat(r.Max, 'g', -1, 64)
}

// Set parses s into r, for flag.Value.
func (r *Range) Set(s string) error {
	v, err := ParseRange(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// UnmarshalText parses a range, for encoding.TextUnmarshaler.
func (r *Range) UnmarshalText(b []byte) error { return r.Set(string(b)) }

// MarshalText formats a range, for encoding.TextMarshaler.
func (r Range) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalTOML accepts a TOML integer, float or "min:max" string.
func (r *Range) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		return r.Set(strconv.FormatInt(v, 10))
	case float64:
		return r.Set(strconv.FormatFloat(v, 'g', -1, 64))
	case string:
		return r.Set(v)
	}
	return fmt.Errorf("%w: %v (%T) is not a number or a \"min:max\" string", ErrRange, v, v)
}

// Roll returns a value drawn uniformly from the range.
func (r Range) Roll(rng *rand.Rand) float64 {
	if r.Min == r.Max {
		return r.Min
	}
	return r.Min + rng.Float64()*(r.Max-r.Min)
}

// RollInt returns an integer drawn uniformly from the integers in the range.
func (r Range) RollInt(rng *rand.Rand) int {
	lo, hi := int(math.Ceil(r.Min)), int(math.Floor(r.Max))
	if hi <= lo {
		return lo
	}
	return lo + rng.IntN(hi-lo+1)
}

// integral reports whether both bounds are whole numbers.
func (r Range) integral() bool {
	return r.Min == math.Trunc(r.Min) && r.Max == math.Trunc(r.Max)
}
