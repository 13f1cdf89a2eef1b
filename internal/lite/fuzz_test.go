package lite_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/wire"
)

// fuzzKinds lists the body decoders FuzzDecodeBody selects from; the index is
// the fuzz input's kind byte (mod len), so keep the order stable for the
// committed corpus.
type fuzzKind struct {
	name string
	make func() lite.Message
}

var fuzzKinds = []fuzzKind{
	{"session_info", func() lite.Message { return new(lite.SessionInfo) }},
	{"announce_interest", func() lite.Message { return new(lite.AnnounceInterest) }},
	{"announce_init", func() lite.Message { return new(lite.AnnounceInit) }},
	{"announce", func() lite.Message { return new(lite.Announce) }},
	{"subscribe", func() lite.Message { return new(lite.Subscribe) }},
	{"subscribe_ok", func() lite.Message { return new(lite.SubscribeOk) }},
	{"subscribe_update", func() lite.Message { return new(lite.SubscribeUpdate) }},
	{"subscribe_drop", func() lite.Message { return new(lite.SubscribeDrop) }},
	{"fetch", func() lite.Message { return new(lite.Fetch) }},
	{"probe", func() lite.Message { return new(lite.Probe) }},
	{"goaway", func() lite.Message { return new(lite.Goaway) }},
	{"group", func() lite.Message { return new(lite.Group) }},
	{"client_setup", func() lite.Message { return new(lite.ClientSetup) }},
	{"server_setup", func() lite.Message { return new(lite.ServerSetup) }},
	{"session_client", func() lite.Message { return new(lite.SessionClient) }},
	{"session_server", func() lite.Message { return new(lite.SessionServer) }},
}

// fuzzVersions maps the fuzz input's version byte (mod len) to a version; the
// last entry is one the lite codecs refuse.
var fuzzVersions = []lite.Version{lite.Lite01, lite.Lite02, lite.Lite03, lite.Lite04, lite.DraftIETF14}

// knownError reports whether err wraps one of the package's sentinels.
func knownError(err error) bool {
	for _, s := range []error{io.EOF, io.ErrUnexpectedEOF, wire.ErrShort, wire.ErrTrailing, wire.ErrInvalid, wire.ErrTooLarge, lite.ErrVersion} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// canonical puts decoded setup parameters in the order the encoder writes
// them (varint-valued first), so decode-encode-decode results compare equal.
func canonical(m lite.Message) lite.Message {
	sortParams := func(p lite.Params) {
		slices.SortStableFunc(p, func(a, b lite.Param) int { return int(a.ID%2) - int(b.ID%2) })
	}
	switch m := m.(type) {
	case *lite.ClientSetup:
		sortParams(m.Params)
	case *lite.ServerSetup:
		sortParams(m.Params)
	}
	return m
}

// vectorSeed is one vector's bytes with what it holds.
type vectorSeed struct {
	message string
	framing string
	fields  map[string]bool
	version lite.Version
	bytes   []byte
}

func loadSeeds(f *testing.F) []vectorSeed {
	var out []vectorSeed
	for _, lf := range liteFiles {
		for _, v := range loadFile(f, lf.file).Vectors {
			b, err := hex.DecodeString(v.Hex)
			if err != nil {
				f.Fatal(err)
			}
			keys := map[string]bool{}
			for k := range v.Fields {
				keys[k] = true
			}
			out = append(out, vectorSeed{v.Message, v.Framing, keys, lf.version, b})
		}
	}
	return out
}

func versionIndex(v lite.Version) uint8 {
	return uint8(slices.Index(fuzzVersions, v))
}

// FuzzDecodeBody decodes arbitrary bodies with every message decoder and
// checks that anything accepted re-encodes and decodes to the same value,
// and that encoding is stable.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range loadSeeds(f) {
		kind := slices.IndexFunc(fuzzKinds, func(k fuzzKind) bool { return k.name == s.message })
		if kind < 0 || s.fields["stream_type"] {
			continue
		}
		body := s.bytes
		if strings.HasPrefix(s.framing, "message type varint") {
			body = body[3:] // type byte and 16-bit size
		} else {
			_, n, err := wire.ParseVarint(body)
			if err != nil {
				f.Fatal(err)
			}
			body = body[n:]
		}
		f.Add(uint8(kind), versionIndex(s.version), body)
	}
	f.Fuzz(func(t *testing.T, kind, ver uint8, body []byte) {
		k := fuzzKinds[int(kind)%len(fuzzKinds)]
		v := fuzzVersions[int(ver)%len(fuzzVersions)]
		m := k.make()
		if err := m.DecodeBody(body, v); err != nil {
			if !knownError(err) {
				t.Fatalf("%s: unexpected error %v", k.name, err)
			}
			return
		}
		enc, err := m.AppendBody(nil, v)
		if err != nil {
			t.Fatalf("%s %s: decoded %+v but cannot encode it: %v", k.name, v, m, err)
		}
		m2 := k.make()
		if err := m2.DecodeBody(enc, v); err != nil {
			t.Fatalf("%s %s: re-decode of %x: %v", k.name, v, enc, err)
		}
		if !reflect.DeepEqual(canonical(m), canonical(m2)) {
			t.Fatalf("%s %s: round trip changed %+v to %+v", k.name, v, m, m2)
		}
		enc2, err := m2.AppendBody(nil, v)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("%s %s: unstable encoding %x vs %x (%v)", k.name, v, enc, enc2, err)
		}
		framed, err := lite.AppendMessage(nil, m, v)
		if err != nil {
			t.Fatal(err)
		}
		m3 := k.make()
		if err := lite.ReadMessage(wire.NewReader(bytes.NewReader(framed)), m3, v, 0); err != nil || !reflect.DeepEqual(canonical(m3), canonical(m2)) {
			t.Fatalf("%s %s: framed round trip: %+v, %v", k.name, v, m3, err)
		}
	})
}

// Stream modes of FuzzReadStream.
const (
	modeSubscribeReplies = iota
	modeGroupStream
	modeControlStream
	modeSetupStream
	numModes
)

// FuzzReadStream feeds arbitrary bytes to the stream-level readers as one of
// the stream kinds and checks that every error is a known one and that
// accepted subscribe replies round-trip.
func FuzzReadStream(f *testing.F) {
	for _, s := range loadSeeds(f) {
		ver := versionIndex(s.version)
		switch {
		case s.message == "subscribe_response":
			f.Add(uint8(modeSubscribeReplies), ver, s.bytes)
		case s.message == "group_stream" || (s.message == "group" && s.fields["stream_type"]):
			f.Add(uint8(modeGroupStream), ver, s.bytes)
		case s.fields["stream_type"]:
			f.Add(uint8(modeControlStream), ver, s.bytes)
		case s.message == "client_setup":
			f.Add(uint8(modeSetupStream), ver, s.bytes)
		case s.message == "server_setup":
			f.Add(uint8(modeSetupStream+numModes), ver, s.bytes)
		}
	}
	f.Fuzz(func(t *testing.T, mode, ver uint8, data []byte) {
		v := fuzzVersions[int(ver)%len(fuzzVersions)]
		r := wire.NewReader(bytes.NewReader(data))
		const maxSize = 1 << 16
		var err error
		switch mode % numModes {
		case modeSubscribeReplies:
			for err == nil {
				var ok *lite.SubscribeOk
				var drop *lite.SubscribeDrop
				ok, drop, err = lite.ReadSubscribeResponse(r, v, maxSize)
				if err != nil {
					break
				}
				if (ok == nil) == (drop == nil) {
					t.Fatalf("ReadSubscribeResponse returned ok=%v drop=%v", ok, drop)
				}
				enc, eerr := lite.AppendSubscribeResponse(nil, ok, drop, v)
				if eerr != nil {
					t.Fatalf("cannot re-encode reply: %v", eerr)
				}
				ok2, drop2, rerr := lite.ReadSubscribeResponse(wire.NewReader(bytes.NewReader(enc)), v, maxSize)
				if rerr != nil || !reflect.DeepEqual(ok, ok2) || !reflect.DeepEqual(drop, drop2) {
					t.Fatalf("reply round trip: %+v %+v -> %+v %+v (%v)", ok, drop, ok2, drop2, rerr)
				}
			}
		case modeGroupStream:
			if _, err = lite.ReadDataType(r); err != nil {
				break
			}
			var g lite.Group
			if err = lite.ReadMessage(r, &g, v, maxSize); err != nil {
				break
			}
			var buf []byte
			for err == nil {
				buf, err = lite.ReadFrame(r, buf[:0], maxSize)
			}
		case modeControlStream:
			var ct lite.ControlType
			if ct, err = lite.ReadControlType(r, v); err != nil {
				break
			}
			var first, next lite.Message
			switch ct {
			case lite.ControlSession:
				next = new(lite.SessionInfo)
			case lite.ControlAnnounce:
				first, next = new(lite.AnnounceInterest), new(lite.Announce)
			case lite.ControlSubscribe:
				first, next = new(lite.Subscribe), new(lite.SubscribeUpdate)
			case lite.ControlFetch:
				first = new(lite.Fetch)
			case lite.ControlProbe:
				next = new(lite.Probe)
			case lite.ControlGoaway:
				first = new(lite.Goaway)
			default:
				t.Fatalf("ReadControlType accepted %s in %s", ct, v)
			}
			if first != nil {
				err = lite.ReadMessage(r, first, v, maxSize)
			}
			for err == nil && next != nil {
				err = lite.ReadMessage(r, next, v, maxSize)
			}
		case modeSetupStream:
			// The next bit of mode picks the client or the server side.
			if (mode/numModes)%2 == 0 {
				err = lite.ReadClientSetup(r, new(lite.ClientSetup))
			} else {
				err = lite.ReadServerSetup(r, new(lite.ServerSetup))
			}
			for err == nil {
				err = lite.ReadMessage(r, new(lite.SessionInfo), v, maxSize)
			}
		}
		if err != nil && !knownError(err) {
			t.Fatalf("mode %d %s: unexpected error %v", mode%numModes, v, err)
		}
	})
}
