package qmux

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// fuzzFramings maps FuzzSubprotocol's prefs byte (mod len) to the server's
// framing preference.
var fuzzFramings = [][]Framing{nil, {QMux00}, {WebTransport}, {WebTransport, QMux00}, {QMux00, WebTransport}}

// FuzzSubprotocol negotiates the WebSocket subprotocol from arbitrary
// Sec-WebSocket-Protocol header values (h1, h2) and server protocols
// (server, comma-separated): nothing panics, the server selects only what
// was offered and what it prefers most, and the selection parses back to a
// framing and protocol the server supports. A client's Offer of the
// protocols in h1, sent as one header, must negotiate qmux-00 and the first
// protocol both sides have.
func FuzzSubprotocol(f *testing.F) {
	full := strings.Join(Offer([]string{"moq-lite-04", "moq-lite-03", "moql"}), ", ")
	for _, s := range []struct {
		h1, h2, server string
		prefs          uint8
	}{
		{full, "", "moq-lite-04,moq-lite-03,moql", 0},
		{full, "", "moql,moq-lite-04", 3},
		{"qmux-00, webtransport", "", "moq-lite-03", 0},
		{"webtransport", "webtransport.moql", "moql", 1},
		{"webtransport.moql,  qmux-00.moql", "chat", "moqt-17,moql", 2},
		{"qmux-00.,qmux-00", "webtransport.", ",moql", 4},
		{" , ,chat, superchat ", "QMUX-00", "", 0},
		{"qmux-00.qmux-00.moql", "webtransport.qmux-00.moql", "qmux-00.moql", 0},
		{"", "", "", 0},
	} {
		f.Add(s.h1, s.h2, s.server, s.prefs)
	}
	f.Fuzz(func(t *testing.T, h1, h2, server string, prefs uint8) {
		h := http.Header{}
		h.Add("Sec-WebSocket-Protocol", h1)
		h.Add("Sec-WebSocket-Protocol", h2)
		offered := offeredSubprotocols(h)
		for _, tok := range offered {
			if !intactToken(tok) || !strings.Contains(h1, tok) && !strings.Contains(h2, tok) {
				t.Fatalf("offeredSubprotocols(%q, %q) returned %q", h1, h2, tok)
			}
		}
		protocols := strings.Split(server, ",")
		framings := fuzzFramings[int(prefs)%len(fuzzFramings)]
		checkSelection(t, offered, protocols, framings)
		if a, b := Select(offered, protocols), selectFraming(offered, protocols, []Framing{QMux00, WebTransport}); a != b {
			t.Fatalf("Select chose %q, the default preference %q", a, b)
		}

		// Any subprotocol parses to a known framing, and back.
		for _, sub := range []string{h1, h2} {
			framing, proto := ParseSubprotocol(sub)
			name := framingName(framing)
			if sub != name && sub != name+"."+proto && !(framing == WebTransport && proto == "") {
				t.Fatalf("ParseSubprotocol(%q) = %v, %q", sub, framing, proto)
			}
		}
		r := &http.Request{Method: http.MethodGet, Header: http.Header{"Connection": {h1}, "Upgrade": {h2}}}
		_ = Offered(r)

		// A client offering the protocols of h1 to this server.
		client := strings.Split(h1, ",")
		offer := Offer(client)
		got := offeredSubprotocols(http.Header{"Sec-Websocket-Protocol": {strings.Join(offer, ",")}})
		// Tokens with commas or surrounding spaces do not survive the header.
		intact := !slices.ContainsFunc(offer, func(o string) bool { return !intactToken(o) })
		if intact && !slices.Equal(got, offer) {
			t.Fatalf("Offer(%q) sent as %q reads back as %q", client, offer, got)
		}
		sel := Select(got, protocols)
		framing, proto := ParseSubprotocol(sel)
		if framing != QMux00 {
			t.Fatalf("client offering %q got %q (%v), not qmux-00", offer, sel, framing)
		}
		common, found := "", false
		for _, p := range protocols {
			if intactToken(SubprotocolQMux00+"."+p) && slices.ContainsFunc(client, func(c string) bool { return stripFraming(c) == p }) {
				common, found = p, true
				break
			}
		}
		if intact && found && proto != common {
			t.Fatalf("client %q, server %q: negotiated %q, want protocol %q", client, protocols, sel, common)
		}
	})
}

// intactToken reports whether s travels intact as one token of a comma-separated
// header.
func intactToken(s string) bool {
	return s != "" && s == strings.TrimSpace(s) && !strings.Contains(s, ",")
}

func framingName(f Framing) string {
	if f == QMux00 {
		return SubprotocolQMux00
	}
	return SubprotocolWebTransport
}

// checkSelection checks selectFraming against its contract: the first
// framing of the preference for which the client offered anything, with the
// first server protocol offered with it, else bare; "" (legacy framing)
// when nothing matches.
func checkSelection(t *testing.T, offered, protocols []string, framings []Framing) {
	t.Helper()
	sel := selectFraming(offered, protocols, framings)
	if len(framings) == 0 {
		framings = []Framing{QMux00, WebTransport}
	}
	// best is what the contract picks for one framing, "" for nothing.
	best := func(f Framing) string {
		name := framingName(f)
		for _, p := range protocols {
			if slices.Contains(offered, name+"."+p) {
				return name + "." + p
			}
		}
		if slices.Contains(offered, name) {
			return name
		}
		return ""
	}
	want := ""
	for _, f := range framings {
		if want = best(f); want != "" {
			break
		}
	}
	if sel != want {
		t.Fatalf("offered %q, protocols %q, framings %v: selected %q, want %q", offered, protocols, framings, sel, want)
	}
	framing, proto := ParseSubprotocol(sel)
	switch {
	case sel == "":
		if framing != WebTransport || proto != "" {
			t.Fatalf(`ParseSubprotocol("") = %v, %q`, framing, proto)
		}
	case !slices.Contains(offered, sel):
		t.Fatalf("selected %q, which was not offered", sel)
	case !slices.Contains(framings, framing):
		t.Fatalf("selected %q: framing %v is not one of %v", sel, framing, framings)
	case proto != "" && !slices.Contains(protocols, proto):
		t.Fatalf("selected %q: protocol %q is not one of %q", sel, proto, protocols)
	case sel != framingName(framing) && sel != framingName(framing)+"."+proto:
		t.Fatalf("selected %q parses as %v, %q", sel, framing, proto)
	}
}
