package lite_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/wire"
)

var allVersions = []lite.Version{lite.Lite01, lite.Lite02, lite.Lite03, lite.Lite04}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVersion(t *testing.T) {
	tests := []struct {
		v         lite.Version
		name      string
		alpn      string
		lite      bool
		usesSetup bool
	}{
		{lite.Lite01, "moq-lite-01", "", true, true},
		{lite.Lite02, "moq-lite-02", "", true, true},
		{lite.Lite03, "moq-lite-03", "moq-lite-03", true, false},
		{lite.Lite04, "moq-lite-04", "moq-lite-04", true, false},
		{lite.DraftIETF14, "moq-transport-14", "", false, false},
		{0x1234, "unknown(0x1234)", "", false, false},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.name {
			t.Errorf("%x.String() = %q, want %q", uint64(tt.v), got, tt.name)
		}
		if got := tt.v.ALPN(); got != tt.alpn {
			t.Errorf("%s.ALPN() = %q, want %q", tt.v, got, tt.alpn)
		}
		if tt.v.IsLite() != tt.lite || tt.v.UsesSetup() != tt.usesSetup {
			t.Errorf("%s: IsLite %v UsesSetup %v", tt.v, tt.v.IsLite(), tt.v.UsesSetup())
		}
		if tt.alpn != "" {
			if got, ok := lite.VersionFromALPN(tt.alpn); !ok || got != tt.v {
				t.Errorf("VersionFromALPN(%q) = %s, %v", tt.alpn, got, ok)
			}
		}
	}
	for _, alpn := range []string{lite.ALPNSetup, "", "moqt-17", "moq-lite-02"} {
		if v, ok := lite.VersionFromALPN(alpn); ok {
			t.Errorf("VersionFromALPN(%q) = %s, want none", alpn, v)
		}
	}
	want := []string{"moq-lite-04", "moq-lite-03", "moql"}
	if got := lite.ALPNs(); !slices.Equal(got, want) {
		t.Errorf("ALPNs() = %q, want %q", got, want)
	}
	lite.ALPNs()[0] = "changed"
	if lite.ALPNs()[0] != want[0] {
		t.Error("ALPNs returns a shared slice")
	}
}

func TestControlTypeValidity(t *testing.T) {
	// Rows: control type; columns: lite-01..04.
	table := map[lite.ControlType][4]bool{
		lite.ControlSession:   {true, true, false, false},
		lite.ControlAnnounce:  {true, true, true, true},
		lite.ControlSubscribe: {true, true, true, true},
		lite.ControlFetch:     {false, false, true, true},
		lite.ControlProbe:     {false, false, true, true},
		lite.ControlGoaway:    {false, false, false, true},
		lite.ClientSetupType:  {false, false, false, false},
		lite.ServerSetupType:  {false, false, false, false},
		9:                     {false, false, false, false},
	}
	for ct, want := range table {
		for i, v := range allVersions {
			if got := ct.Valid(v); got != want[i] {
				t.Errorf("%s.Valid(%s) = %v, want %v", ct, v, got, want[i])
			}
		}
		if ct.Valid(lite.DraftIETF14) {
			t.Errorf("%s valid for draft-14", ct)
		}
	}
}

func TestReadControlTypeErrors(t *testing.T) {
	tests := []struct {
		in   string
		v    lite.Version
		want error
	}{
		{"", lite.Lite03, io.EOF},
		{"40", lite.Lite03, io.ErrUnexpectedEOF},
		{"04", lite.Lite02, lite.ErrVersion},
		{"05", lite.Lite03, lite.ErrVersion},
		{"00", lite.Lite04, lite.ErrVersion},
		{"20", lite.Lite01, lite.ErrVersion},
		{"09", lite.Lite04, wire.ErrInvalid},
		{"02", lite.DraftIETF14, lite.ErrVersion},
	}
	for _, tt := range tests {
		r := wire.NewReader(bytes.NewReader(mustHex(t, tt.in)))
		if _, err := lite.ReadControlType(r, tt.v); !errors.Is(err, tt.want) {
			t.Errorf("ReadControlType(%s, %s) err = %v, want %v", tt.in, tt.v, err, tt.want)
		}
	}
	r := wire.NewReader(bytes.NewReader([]byte{1}))
	if _, err := lite.ReadDataType(r); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("ReadDataType(01) err = %v, want ErrInvalid", err)
	}
	if _, err := lite.ReadDataType(r); err != io.EOF {
		t.Errorf("ReadDataType at end err = %v, want io.EOF", err)
	}
}

// TestPathNormalisation checks that path-typed fields are cleaned on decode
// while track names and URIs are kept, and that encoders write paths as
// given.
func TestPathNormalisation(t *testing.T) {
	const dirty, clean = "/room//alice/", "room/alice"
	const track = "/video//hd/"
	const uri = "https://h//x/"
	tests := []struct {
		name string
		in   lite.Message
		want lite.Message
		v    lite.Version
		raw  string // must appear in the encoded body as given
	}{
		{"subscribe", &lite.Subscribe{Broadcast: dirty, Track: track}, &lite.Subscribe{Broadcast: clean, Track: track}, lite.Lite03, dirty},
		{"announce_interest", &lite.AnnounceInterest{Prefix: dirty}, &lite.AnnounceInterest{Prefix: clean}, lite.Lite04, dirty},
		{"announce", &lite.Announce{Active: true, Suffix: dirty}, &lite.Announce{Active: true, Suffix: clean}, lite.Lite02, dirty},
		{"announce_init", &lite.AnnounceInit{Suffixes: []string{dirty, "/", "ok"}}, &lite.AnnounceInit{Suffixes: []string{clean, "", "ok"}}, lite.Lite01, dirty},
		{"fetch", &lite.Fetch{Broadcast: dirty, Track: track}, &lite.Fetch{Broadcast: clean, Track: track}, lite.Lite03, dirty},
		{"goaway", &lite.Goaway{URI: uri}, &lite.Goaway{URI: uri}, lite.Lite04, uri},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := tt.in.AppendBody(nil, tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(body, []byte(tt.raw)) {
				t.Fatalf("encoder changed %q: %x", tt.raw, body)
			}
			got := newLike(tt.in)
			if err := got.DecodeBody(body, tt.v); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeRules(t *testing.T) {
	tests := []struct {
		name string
		m    lite.Message
		v    lite.Version
		body string
		want lite.Message // nil when an error is expected
		err  error
	}{
		{"ordered byte 02 is true", &lite.Subscribe{}, lite.Lite03, "00000000" + "02" + "000000",
			&lite.Subscribe{Ordered: true}, nil},
		{"ordered byte ff is true in SUBSCRIBE_OK", &lite.SubscribeOk{}, lite.Lite04, "07" + "ff" + "000000",
			&lite.SubscribeOk{Priority: 7, Ordered: true}, nil},
		{"announce status must be 0 or 1", &lite.Announce{}, lite.Lite02, "0200", nil, wire.ErrInvalid},
		{"256 hops in lite-03", &lite.Announce{}, lite.Lite03, "01" + "00" + "4100", &lite.Announce{Active: true, Hops: make([]uint64, 256)}, nil},
		{"257 hops in lite-03", &lite.Announce{}, lite.Lite03, "01" + "00" + "4101", nil, wire.ErrTooLarge},
		{"257 hops in lite-04", &lite.Announce{}, lite.Lite04, "01" + "00" + "4101" + strings.Repeat("00", 257), nil, wire.ErrTooLarge},
		{"hop count beyond body in lite-04", &lite.Announce{}, lite.Lite04, "01" + "00" + "4100" + "01", nil, wire.ErrShort},
		{"huge announce init count", &lite.AnnounceInit{}, lite.Lite01, "ffffffffffffffff" + "00", nil, wire.ErrShort},
		{"bad utf-8 track", &lite.Subscribe{}, lite.Lite01, "00" + "00" + "02c328" + "00", nil, wire.ErrInvalid},
		{"max latency saturates", &lite.SubscribeUpdate{}, lite.Lite03, "00" + "00" + "ffffffffffffffff" + "00" + "00",
			&lite.SubscribeUpdate{MaxLatency: time.Duration(math.MaxInt64/int64(time.Millisecond)) * time.Millisecond}, nil},
		{"largest optional group", &lite.SubscribeOk{}, lite.Lite03, "00" + "00" + "00" + "ffffffffffffffff" + "01",
			&lite.SubscribeOk{StartGroup: lite.OptGroup{Seq: wire.MaxVarint - 1, Valid: true}, EndGroup: lite.OptGroup{Valid: true}}, nil},
		{"lite-02 SUBSCRIBE_OK must be empty", &lite.SubscribeOk{}, lite.Lite02, "00", nil, wire.ErrTrailing},
		{"probe rtt 0 is unknown", &lite.Probe{}, lite.Lite04, "0500", &lite.Probe{Bitrate: 5}, nil},
		{"probe without rtt in lite-04", &lite.Probe{}, lite.Lite04, "05", nil, wire.ErrShort},
		{"duplicate setup parameter", &lite.ServerSetup{}, lite.Lite01, "01" + "02" + "0201" + "0202", nil, wire.ErrInvalid},
		{"too many setup parameters", &lite.ServerSetup{}, lite.Lite01, "01" + "4041", nil, wire.ErrTooLarge},
		{"too many versions", &lite.ClientSetup{}, lite.Lite01, "4081", nil, wire.ErrTooLarge},
		{"duplicate extension", &lite.SessionServer{}, lite.Lite01, "01" + "02" + "0100" + "0100", nil, wire.ErrInvalid},
		{"lite message in draft-14", &lite.Group{}, lite.DraftIETF14, "0000", nil, lite.ErrVersion},
		{"lite message in unknown version", &lite.Subscribe{}, 0, "00000000", nil, lite.ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.DecodeBody(mustHex(t, tt.body), tt.v)
			if tt.want == nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tt.m, tt.want) {
				t.Fatalf("decoded %+v, want %+v", tt.m, tt.want)
			}
		})
	}
}

func TestDecodeReplacesContents(t *testing.T) {
	m := &lite.Announce{Active: true, Suffix: "old", Hops: []uint64{1, 2}}
	if err := m.DecodeBody(mustHex(t, "000000"), lite.Lite03); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, &lite.Announce{}) {
		t.Fatalf("stale fields after decode: %+v", m)
	}
}

func TestEncodeRules(t *testing.T) {
	tests := []struct {
		name string
		m    lite.Message
		v    lite.Version
		body string // expected body; "" with err set means an error
		err  error
	}{
		{"ordered encodes as 01", &lite.SubscribeUpdate{Ordered: true}, lite.Lite03, "00" + "01" + "000000", nil},
		{"sub-millisecond latency truncates", &lite.Subscribe{MaxLatency: 1999 * time.Microsecond}, lite.Lite03, "000000" + "00" + "00" + "01" + "0000", nil},
		{"negative latency", &lite.Subscribe{MaxLatency: -time.Millisecond}, lite.Lite03, "", wire.ErrInvalid},
		{"group past varint range", &lite.SubscribeOk{EndGroup: lite.OptGroup{Seq: wire.MaxVarint, Valid: true}}, lite.Lite03, "", wire.ErrInvalid},
		{"group seq ignored when absent", &lite.SubscribeOk{StartGroup: lite.OptGroup{Seq: 9}}, lite.Lite03, "0000000000", nil},
		{"id past varint range", &lite.Subscribe{ID: 1 << 62}, lite.Lite01, "", wire.ErrInvalid},
		{"track too long", &lite.Subscribe{Track: strings.Repeat("x", lite.MaxStringLen+1)}, lite.Lite01, "", wire.ErrTooLarge},
		{"257 hops", &lite.Announce{Hops: make([]uint64, 257)}, lite.Lite03, "", wire.ErrTooLarge},
		{"hops dropped before lite-03", &lite.Announce{Active: true, Hops: []uint64{5}}, lite.Lite02, "0100", nil},
		{"hop ids dropped in lite-03", &lite.Announce{Hops: []uint64{5, 6}}, lite.Lite03, "000002", nil},
		{"exclude hop dropped before lite-04", &lite.AnnounceInterest{ExcludeHop: 3}, lite.Lite03, "00", nil},
		{"SUBSCRIBE_OK priority dropped in lite-02", &lite.SubscribeOk{Priority: 9}, lite.Lite02, "", nil},
		{"delivery fields dropped before lite-03", &lite.SubscribeUpdate{Priority: 3, Ordered: true}, lite.Lite02, "03", nil},
		{"rtt under 1ms sent as 1", &lite.Probe{RTT: 300 * time.Microsecond}, lite.Lite04, "0001", nil},
		{"unknown rtt sent as 0", &lite.Probe{}, lite.Lite04, "0000", nil},
		{"rtt dropped in lite-03", &lite.Probe{RTT: time.Second}, lite.Lite03, "00", nil},
		{"negative rtt", &lite.Probe{RTT: -1}, lite.Lite04, "", wire.ErrInvalid},
		{"SUBSCRIBE_DROP in lite-02", &lite.SubscribeDrop{}, lite.Lite02, "", lite.ErrVersion},
		{"unknown version", &lite.Group{}, 7, "", lite.ErrVersion},
		{"varint params first", &lite.ServerSetup{Version: 1, Params: lite.Params{{ID: 7, Bytes: []byte("x")}, {ID: 2, Value: 5}}}, lite.Lite01,
			"01" + "02" + "0205" + "070178", nil},
		{"even param with bytes", &lite.ServerSetup{Params: lite.Params{{ID: 2, Bytes: []byte("x")}}}, lite.Lite01, "", wire.ErrInvalid},
		{"odd param with value", &lite.ServerSetup{Params: lite.Params{{ID: 7, Value: 1}}}, lite.Lite01, "", wire.ErrInvalid},
		{"duplicate param", &lite.ClientSetup{Params: lite.Params{{ID: 2}, {ID: 2}}}, lite.Lite01, "", wire.ErrInvalid},
		{"too many params", &lite.ClientSetup{Params: make(lite.Params, lite.MaxParams+1)}, lite.Lite01, "", wire.ErrTooLarge},
		{"too many versions", &lite.SessionClient{Versions: make([]uint64, lite.MaxVersions+1)}, lite.Lite01, "", wire.ErrTooLarge},
		{"duplicate extension", &lite.SessionServer{Extensions: lite.Extensions{{ID: 1}, {ID: 1}}}, lite.Lite01, "", wire.ErrInvalid},
		{"extension too long", &lite.SessionServer{Extensions: lite.Extensions{{ID: 1, Value: make([]byte, lite.MaxParamLen+1)}}}, lite.Lite01, "", wire.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte{0xaa}
			got, err := tt.m.AppendBody(prefix, tt.v)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if !bytes.Equal(got, prefix) {
					t.Fatalf("failed encode returned %x, want the input unchanged", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := "aa" + tt.body; hex.EncodeToString(got) != want {
				t.Fatalf("body %x, want %s", got, want)
			}
		})
	}
}

func TestAppendMessageSizes(t *testing.T) {
	for _, n := range []int{0, 62, 63, 64, 100, 16383, 16384, lite.MaxStringLen} {
		m := &lite.Goaway{URI: strings.Repeat("u", n)}
		body, err := m.AppendBody(nil, lite.Lite04)
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte("keep")
		got, err := lite.AppendMessage(prefix, m, lite.Lite04)
		if err != nil {
			t.Fatal(err)
		}
		want := wire.AppendVarint([]byte("keep"), uint64(len(body)))
		want = append(want, body...)
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendMessage with a %d-byte body differs from size+body", len(body))
		}
		var back lite.Goaway
		if err := lite.ReadMessage(wire.NewReader(bytes.NewReader(got[4:])), &back, lite.Lite04, 0); err != nil || back != *m {
			t.Fatalf("round trip of %d-byte URI: %v", n, err)
		}
	}
	prefix := []byte("keep")
	got, err := lite.AppendMessage(prefix, &lite.Goaway{URI: strings.Repeat("u", lite.MaxStringLen+1)}, lite.Lite04)
	if !errors.Is(err, wire.ErrTooLarge) || !bytes.Equal(got, prefix) {
		t.Fatalf("oversized message: %q, %v", got, err)
	}
}

func TestAppendU16MessageLimit(t *testing.T) {
	m := &lite.ClientSetup{Params: lite.Params{
		{ID: 1, Bytes: make([]byte, 60000)},
		{ID: 3, Bytes: make([]byte, 6000)},
	}}
	got, err := lite.AppendU16Message([]byte{0x20}, m, lite.Lite01)
	if !errors.Is(err, wire.ErrTooLarge) || !bytes.Equal(got, []byte{0x20}) {
		t.Fatalf("66 KB setup: %d bytes, %v", len(got), err)
	}
}

func TestSetupHelpers(t *testing.T) {
	var buf []byte
	var err error
	if buf, err = lite.AppendClientSetup(buf, &lite.ClientSetup{Versions: []uint64{uint64(lite.Lite02)}}); err != nil {
		t.Fatal(err)
	}
	// A server reply where a client hello is expected, and vice versa.
	var cs lite.ClientSetup
	if err := lite.ReadServerSetup(wire.NewReader(bytes.NewReader(buf)), new(lite.ServerSetup)); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("ReadServerSetup of CLIENT_SETUP err = %v, want ErrInvalid", err)
	}
	if err := lite.ReadClientSetup(wire.NewReader(bytes.NewReader(buf)), &cs); err != nil || len(cs.Versions) != 1 {
		t.Errorf("ReadClientSetup = %+v, %v", cs, err)
	}
	for _, tt := range []struct {
		in   string
		want error
	}{
		{"", io.EOF},
		{"20", io.ErrUnexpectedEOF},
		{"2000", io.ErrUnexpectedEOF},
		{"200002", io.ErrUnexpectedEOF},
		{"2000020200", wire.ErrShort},
		{"200003000000", wire.ErrTrailing},
		{"21000100", wire.ErrInvalid},
	} {
		if err := lite.ReadClientSetup(wire.NewReader(bytes.NewReader(mustHex(t, tt.in))), &cs); !errors.Is(err, tt.want) {
			t.Errorf("ReadClientSetup(%s) err = %v, want %v", tt.in, err, tt.want)
		}
	}
	big := &lite.ServerSetup{Params: lite.Params{{ID: 1, Bytes: make([]byte, 60000)}, {ID: 3, Bytes: make([]byte, 6000)}}}
	if got, err := lite.AppendServerSetup([]byte{9}, big); !errors.Is(err, wire.ErrTooLarge) || !bytes.Equal(got, []byte{9}) {
		t.Errorf("oversized SERVER_SETUP = %d bytes, %v", len(got), err)
	}
}

func TestParams(t *testing.T) {
	var p lite.Params
	p.SetBytes(lite.ParamImplementation, []byte("moqgo"))
	p.SetVarint(lite.ParamMaxRequestID, 10)
	p.SetVarint(lite.ParamMaxRequestID, 20)
	if len(p) != 2 || p[0].ID != lite.ParamImplementation {
		t.Fatalf("Params = %+v, want two entries in insertion order", p)
	}
	if v, ok := p.Varint(lite.ParamMaxRequestID); !ok || v != 20 {
		t.Errorf("Varint(MaxRequestID) = %d, %v", v, ok)
	}
	if b, ok := p.Bytes(lite.ParamImplementation); !ok || string(b) != "moqgo" {
		t.Errorf("Bytes(Implementation) = %q, %v", b, ok)
	}
	if _, ok := p.Varint(lite.ParamImplementation); ok {
		t.Error("Varint found an odd id")
	}
	if _, ok := p.Bytes(lite.ParamPath); ok {
		t.Error("Bytes found a missing id")
	}

	var x lite.Extensions
	x.Set(1, []byte{1})
	x.Set(2, []byte{2})
	x.Set(1, []byte{3})
	if v, ok := x.Get(1); !ok || !bytes.Equal(v, []byte{3}) || len(x) != 2 {
		t.Errorf("Extensions = %+v", x)
	}
	if _, ok := x.Get(9); ok {
		t.Error("Get found a missing id")
	}
}

func TestSubscribeResponse(t *testing.T) {
	ok := &lite.SubscribeOk{Priority: 1}
	drop := &lite.SubscribeDrop{Start: 1, End: 2}
	for _, v := range allVersions {
		if _, err := lite.AppendSubscribeResponse(nil, nil, nil, v); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("%s: neither OK nor DROP: %v", v, err)
		}
		if _, err := lite.AppendSubscribeResponse(nil, ok, drop, v); !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("%s: both OK and DROP: %v", v, err)
		}
	}
	// A sequence of replies on one lite-03 stream.
	var stream []byte
	var err error
	for _, step := range []struct {
		ok   *lite.SubscribeOk
		drop *lite.SubscribeDrop
	}{{ok, nil}, {nil, drop}, {nil, drop}} {
		if stream, err = lite.AppendSubscribeResponse(stream, step.ok, step.drop, lite.Lite03); err != nil {
			t.Fatal(err)
		}
	}
	r := wire.NewReader(bytes.NewReader(stream))
	gotOk, gotDrop, err := lite.ReadSubscribeResponse(r, lite.Lite03, 0)
	if err != nil || gotDrop != nil || *gotOk != *ok {
		t.Fatalf("first reply = %+v, %+v, %v", gotOk, gotDrop, err)
	}
	for range 2 {
		gotOk, gotDrop, err = lite.ReadSubscribeResponse(r, lite.Lite03, 0)
		if err != nil || gotOk != nil || *gotDrop != *drop {
			t.Fatalf("drop reply = %+v, %+v, %v", gotOk, gotDrop, err)
		}
	}
	if _, _, err := lite.ReadSubscribeResponse(r, lite.Lite03, 0); err != io.EOF {
		t.Fatalf("end of stream err = %v, want io.EOF", err)
	}

	tests := []struct {
		in   string
		v    lite.Version
		want error
	}{
		{"", lite.Lite01, io.EOF},
		{"02", lite.Lite04, wire.ErrInvalid},
		{"00", lite.Lite04, io.ErrUnexpectedEOF},
		{"0103", lite.Lite03, io.ErrUnexpectedEOF},
		{"0102ffff", lite.Lite03, wire.ErrShort},
		{"0201ff", lite.Lite01, wire.ErrTrailing},
		{"000400", lite.Lite03, wire.ErrTooLarge}, // size 4 above max 3
		{"00", lite.DraftIETF14, lite.ErrVersion},
	}
	for _, tt := range tests {
		r := wire.NewReader(bytes.NewReader(mustHex(t, tt.in)))
		if _, _, err := lite.ReadSubscribeResponse(r, tt.v, 3); !errors.Is(err, tt.want) {
			t.Errorf("ReadSubscribeResponse(%s, %s) err = %v, want %v", tt.in, tt.v, err, tt.want)
		}
	}
}

func TestFrames(t *testing.T) {
	for _, size := range []int{-1, wire.MaxMessageSize + 1} {
		if got, err := lite.AppendFrameHeader([]byte{1}, size); !errors.Is(err, wire.ErrTooLarge) || len(got) != 1 {
			t.Errorf("AppendFrameHeader(%d) = %x, %v", size, got, err)
		}
	}
	hdr, err := lite.AppendFrameHeader(nil, wire.MaxMessageSize)
	if err != nil || len(hdr) != 4 {
		t.Fatalf("AppendFrameHeader(max) = %x, %v", hdr, err)
	}

	stream := []byte{}
	for _, p := range []string{"a", "", "hello", strings.Repeat("z", 300)} {
		if stream, err = lite.AppendFrame(stream, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	r := wire.NewReader(bytes.NewReader(stream))
	if n, err := lite.ReadFrameHeader(r, 0); err != nil || n != 1 {
		t.Fatalf("ReadFrameHeader = %d, %v", n, err)
	}
	p := make([]byte, 1)
	if err := r.ReadFull(p); err != nil || p[0] != 'a' {
		t.Fatalf("payload %q, %v", p, err)
	}
	buf := make([]byte, 0, 8)
	if buf, err = lite.ReadFrame(r, buf[:0], 0); err != nil || len(buf) != 0 {
		t.Fatalf("empty frame = %q, %v", buf, err)
	}
	if buf, err = lite.ReadFrame(r, buf[:0], 0); err != nil || string(buf) != "hello" {
		t.Fatalf("frame = %q, %v", buf, err)
	}
	if _, err := lite.ReadFrame(r, buf[:0], 299); !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("frame over max: %v", err)
	}

	r = wire.NewReader(bytes.NewReader(mustHex(t, "0568")))
	if got, err := lite.ReadFrame(r, []byte("x"), 0); err != io.ErrUnexpectedEOF || string(got) != "x" {
		t.Fatalf("truncated frame = %q, %v", got, err)
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	payload := bytes.Repeat([]byte{7}, 1000)
	frame, err := lite.AppendFrame(nil, payload)
	if err != nil {
		t.Fatal(err)
	}
	src := bytes.NewReader(frame)
	r := wire.NewReader(src)
	buf := make([]byte, 0, 2048)
	allocs := testing.AllocsPerRun(50, func() {
		src.Reset(frame)
		buf, err = lite.ReadFrame(r, buf[:0], 0)
		if err != nil || len(buf) != len(payload) {
			t.Fatalf("ReadFrame = %d bytes, %v", len(buf), err)
		}
	})
	if allocs != 0 {
		t.Errorf("ReadFrame into a large enough buffer allocated %v times", allocs)
	}
}

func TestAppendAllocations(t *testing.T) {
	m := &lite.Subscribe{ID: 7, Broadcast: "room/alice", Track: "video", Priority: 1, Ordered: true,
		MaxLatency: time.Second, StartGroup: lite.OptGroup{Seq: 3, Valid: true}}
	g := &lite.Group{SubscribeID: 7, Sequence: 99}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		b, err := lite.AppendMessage(buf[:0], m, lite.Lite04)
		if err == nil {
			b, err = lite.AppendGroupHeader(b, g, lite.Lite04)
		}
		if err == nil {
			_, err = lite.AppendFrameHeader(b, 1234)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("encoding into a large enough buffer allocated %v times", allocs)
	}
}
