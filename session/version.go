package session

import (
	"fmt"

	"github.com/moqgo/moq/internal/lite"
)

// Version names a protocol version of either family by its wire code:
// moq-lite versions by their lite code (0xff0dad01 …), IETF moq-transport
// drafts by their draft code (0xff0000NN). Both families share the type so
// a Config lists the versions it speaks in one preference order.
type Version uint64

// The versions this package speaks. Lite03 and Lite04 are chosen by ALPN (or
// WebTransport or WebSocket protocol); Lite01 and Lite02 are negotiated with a
// SETUP exchange when the connection carries the "moql" protocol or none at
// all.
const (
	Lite01 = Version(lite.Lite01)
	Lite02 = Version(lite.Lite02)
	Lite03 = Version(lite.Lite03)
	Lite04 = Version(lite.Lite04)
)

// DefaultVersions lists every supported version, most preferred first.
var DefaultVersions = []Version{Lite04, Lite03, Lite02, Lite01}

// ietfDraftBase is the code of IETF moq-transport draft 0; draft N is
// ietfDraftBase+N.
const ietfDraftBase = 0xff000000

// String returns the version's name, such as "moq-lite-04" or
// "moq-transport-14".
func (v Version) String() string {
	switch {
	case lite.Version(v).IsLite():
		return lite.Version(v).String()
	case v > ietfDraftBase && v < ietfDraftBase+0x100:
		return fmt.Sprintf("moq-transport-%02d", uint64(v-ietfDraftBase))
	}
	return fmt.Sprintf("unknown(%#x)", uint64(v))
}

// supported reports whether this package has an engine for v.
func (v Version) supported() bool { return lite.Version(v).IsLite() }

// usesSetup reports whether v is negotiated by the compat SETUP exchange
// rather than named by the connection's protocol.
func (v Version) usesSetup() bool { return lite.Version(v).UsesSetup() }

// Protocols returns the application protocols (QUIC ALPNs, WebTransport and
// WebSocket protocols) for versions, most preferred first: one per version
// a protocol names, then "moql" when any version is negotiated by SETUP. No
// versions means DefaultVersions.
func Protocols(versions ...Version) []string {
	if len(versions) == 0 {
		versions = DefaultVersions
	}
	var out []string
	setup := false
	for _, v := range versions {
		if alpn := lite.Version(v).ALPN(); alpn != "" {
			out = append(out, alpn)
		} else if v.usesSetup() {
			setup = true
		}
	}
	if setup {
		out = append(out, lite.ALPNSetup)
	}
	return out
}

// versionFromProtocol returns the version a connection's protocol names, and
// false when the protocol leaves it to SETUP ("moql" or none).
func versionFromProtocol(proto string) (Version, bool) {
	v, ok := lite.VersionFromALPN(proto)
	return Version(v), ok
}
