// Package shrink frees the memory of maps that grew large and emptied: a Go
// map keeps the buckets of its peak size after deletes, so per-name state
// that churns would hold memory for names long gone.
package shrink

// minPeak is the size below which a map is never copied: small maps cost
// little, and copying them often would cost more.
const minPeak = 64

// Map returns m, or a fresh copy of it once it holds at most a quarter of
// its peak size; *peak tracks that peak for m and is reset on a copy. Call it
// after deleting from m.
func Map[M ~map[K]V, K comparable, V any](m M, peak *int) M {
	n := len(m)
	*peak = max(*peak, n)
	if *peak < minPeak || n > *peak/4 {
		return m
	}
	*peak = n
	// Not maps.Clone: it keeps the size of the buckets it copies.
	out := make(M, n)
	for k, v := range m {
		out[k] = v
	}
	return out
}
