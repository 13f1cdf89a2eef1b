package moq

import (
	"fmt"

	"github.com/moqgo/moq/internal/lite"
)

// Version is a moq-lite protocol version.
type Version uint64

// The moq-lite versions this package speaks. Lite03 and Lite04 are chosen by
// ALPN (or WebTransport protocol); Lite01 and Lite02 are negotiated with a SETUP
// exchange when the connection carries the "moql" protocol or none at all.
const (
	Lite01 = Version(lite.Lite01)
	Lite02 = Version(lite.Lite02)
	Lite03 = Version(lite.Lite03)
	Lite04 = Version(lite.Lite04)
)

// DefaultVersions lists every supported version, most preferred first.
var DefaultVersions = []Version{Lite04, Lite03, Lite02, Lite01}

// String returns the version's name, such as "moq-lite-04".
func (v Version) String() string {
	switch v {
	case Lite01, Lite02, Lite03, Lite04:
		return lite.Version(v).String()
	}
	return fmt.Sprintf("unknown(%#x)", uint64(v))
}

// protocols returns the ALPN / WebTransport protocol list a client offers for
// versions, most preferred first: a name per ALPN-selected version, then "moql"
// if any version needs SETUP negotiation.
func protocols(versions []Version) []string {
	var out []string
	setup := false
	for _, v := range versions {
		if alpn := lite.Version(v).ALPN(); alpn != "" {
			out = append(out, alpn)
		} else {
			setup = true
		}
	}
	if setup {
		out = append(out, lite.ALPNSetup)
	}
	return out
}

// hasAnnounceInit reports whether v opens announce streams with ANNOUNCE_INIT
// and runs a session stream (lite-01/02).
func hasAnnounceInit(v lite.Version) bool { return v == lite.Lite01 || v == lite.Lite02 }

// Protocols returns the application protocols (QUIC ALPNs, WebTransport and
// WebSocket protocols) for versions, most preferred first: one per
// ALPN-selected version, then "moql" when any version is negotiated by SETUP.
// No versions means DefaultVersions.
func Protocols(versions ...Version) []string {
	if len(versions) == 0 {
		versions = DefaultVersions
	}
	return protocols(versions)
}
