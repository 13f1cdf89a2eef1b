package engine

import "github.com/moqgo/moq"

// Remote is a broadcast of the peer mirrored locally: its tracks are
// subscribed from the peer when requested, and the groups its cache lacks are
// fetched. It holds no goroutine of its own.
type Remote struct {
	broadcast *moq.BroadcastProducer
	dynamic   *moq.BroadcastDynamic
}

// NewRemote creates the mirror of a broadcast that came through hops, whose
// tracks cache as cache says. subscribe runs on the requesting goroutine and
// owns the track: it must start serving it and return (see
// moq.RequestHandler).
func NewRemote(hops []uint64, cache moq.CachePolicy, subscribe moq.RequestHandler, fetch moq.FetchHandler) *Remote {
	b := moq.NewBroadcast()
	b.SetHops(hops)
	b.SetCachePolicy(cache)
	d := b.Dynamic()
	d.HandleFetch(fetch)
	d.HandleRequests(subscribe)
	return &Remote{broadcast: b, dynamic: d}
}

// Consumer returns the mirrored broadcast.
func (r *Remote) Consumer() *moq.BroadcastConsumer { return r.broadcast.Consume() }

// End withdraws the mirror: cleanly when err is nil, otherwise aborting it
// (and its tracks) with err. Requests stop being served.
func (r *Remote) End(err error) {
	r.dynamic.Close()
	if err != nil {
		_ = r.broadcast.Abort(err)
	}
	r.broadcast.Close()
}
