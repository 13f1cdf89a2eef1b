package lite

import "math"

// AnnounceInterest opens an announce stream: the subscriber asks for the
// broadcasts under Prefix (ANNOUNCE_PLEASE in the draft).
type AnnounceInterest struct {
	// Prefix is a broadcast path prefix; "" asks for everything.
	Prefix string
	// ExcludeHop asks the publisher to skip announces whose hop list contains
	// it; 0 means none. Carried by lite-04 only.
	ExcludeHop uint64
}

// AppendBody implements Message.
func (m *AnnounceInterest) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.IsLite() {
		return b, versionErr("ANNOUNCE_INTEREST", v)
	}
	e := encoder{b: b, msg: "ANNOUNCE_INTEREST"}
	e.str(m.Prefix, "prefix")
	if v >= Lite04 {
		e.varint(m.ExcludeHop, "exclude_hop")
	}
	return e.result(b)
}

// DecodeBody implements Message.
func (m *AnnounceInterest) DecodeBody(body []byte, v Version) error {
	if !v.IsLite() {
		return versionErr("ANNOUNCE_INTEREST", v)
	}
	d := newDecoder(body, "ANNOUNCE_INTEREST")
	*m = AnnounceInterest{Prefix: d.path("prefix")}
	if v >= Lite04 {
		m.ExcludeHop = d.varint("exclude_hop")
	}
	return d.finish()
}

// Announce reports that a broadcast under the requested prefix became active
// or ended.
type Announce struct {
	// Active is true when the broadcast starts and false when it ends.
	Active bool
	// Suffix is the broadcast path relative to the requested prefix.
	Suffix string
	// Hops lists the ids of the relays the announce passed through, at most
	// MaxHops. lite-01/02 do not carry hops; lite-03 carries only their count
	// (decoded as that many zero ids); lite-04 carries the ids.
	Hops []uint64
}

// AppendBody implements Message.
func (m *Announce) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.IsLite() {
		return b, versionErr("ANNOUNCE", v)
	}
	e := encoder{b: b, msg: "ANNOUNCE"}
	e.bool(m.Active)
	e.str(m.Suffix, "suffix")
	if v >= Lite03 {
		e.count(len(m.Hops), MaxHops, "hops")
	}
	if v >= Lite04 {
		for _, h := range m.Hops {
			e.varint(h, "hop")
		}
	}
	return e.result(b)
}

// DecodeBody implements Message.
func (m *Announce) DecodeBody(body []byte, v Version) error {
	if !v.IsLite() {
		return versionErr("ANNOUNCE", v)
	}
	d := newDecoder(body, "ANNOUNCE")
	*m = Announce{Active: d.bool("status"), Suffix: d.path("suffix")}
	switch {
	case v == Lite03:
		if n, _ := d.count(MaxHops, "hops"); n > 0 {
			m.Hops = make([]uint64, n)
		}
	case v >= Lite04:
		n, capHint := d.count(MaxHops, "hops")
		if n > 0 {
			m.Hops = make([]uint64, 0, capHint)
		}
		for i := 0; i < n && d.err == nil; i++ {
			m.Hops = append(m.Hops, d.varint("hop"))
		}
	}
	return d.finish()
}

// AnnounceInit is the first reply on a lite-01/02 announce stream: the
// suffixes of every broadcast already active. Later versions send one
// Announce per broadcast instead.
type AnnounceInit struct {
	// Suffixes are broadcast paths relative to the requested prefix.
	Suffixes []string
}

// AppendBody implements Message.
func (m *AnnounceInit) AppendBody(b []byte, v Version) ([]byte, error) {
	if !v.UsesSetup() {
		return b, versionErr("ANNOUNCE_INIT", v)
	}
	e := encoder{b: b, msg: "ANNOUNCE_INIT"}
	e.varint(uint64(len(m.Suffixes)), "count")
	for _, s := range m.Suffixes {
		e.str(s, "suffix")
	}
	return e.result(b)
}

// DecodeBody implements Message.
func (m *AnnounceInit) DecodeBody(body []byte, v Version) error {
	if !v.UsesSetup() {
		return versionErr("ANNOUNCE_INIT", v)
	}
	d := newDecoder(body, "ANNOUNCE_INIT")
	*m = AnnounceInit{}
	// Each suffix takes at least one byte, so the body bounds the count.
	n, capHint := d.count(math.MaxInt, "count")
	if n > 0 {
		m.Suffixes = make([]string, 0, capHint)
	}
	for i := 0; i < n && d.err == nil; i++ {
		m.Suffixes = append(m.Suffixes, d.path("suffix"))
	}
	return d.finish()
}
