package lite_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/lite"
	"github.com/moqgo/moq/internal/vectortest"
	"github.com/moqgo/moq/internal/wire"
)

// liteFiles maps each vector file to its version.
var liteFiles = []struct {
	file    string
	version lite.Version
}{
	{"lite-01.json", lite.Lite01},
	{"lite-02.json", lite.Lite02},
	{"lite-03.json", lite.Lite03},
	{"lite-04.json", lite.Lite04},
}

type vectorFile struct {
	Version     string          `json:"version"`
	VersionCode json.RawMessage `json:"version_code"`
	Vectors     []vector        `json:"vectors"`
	Unsupported []struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	} `json:"unsupported"`
}

type vector struct {
	Name    string                     `json:"name"`
	Message string                     `json:"message"`
	Fields  map[string]json.RawMessage `json:"fields"`
	Hex     string                     `json:"hex"`
	Framing string                     `json:"framing"`
}

func loadFile(t testing.TB, name string) vectorFile {
	t.Helper()
	var f vectorFile
	if err := json.Unmarshal(vectortest.Load(t, name), &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(f.Vectors) == 0 {
		t.Fatalf("%s has no vectors", name)
	}
	return f
}

// fields reads a vector's fields and remembers which ones were used, so a
// field the test does not understand fails it.
type fields struct {
	t    testing.TB
	name string
	m    map[string]json.RawMessage
	used map[string]bool
}

func newFields(t testing.TB, name string, m map[string]json.RawMessage) *fields {
	return &fields{t: t, name: name, m: m, used: map[string]bool{}}
}

func (f *fields) has(k string) bool {
	_, ok := f.m[k]
	return ok
}

func (f *fields) raw(k string) json.RawMessage {
	f.t.Helper()
	r, ok := f.m[k]
	if !ok {
		f.t.Fatalf("%s: missing field %q", f.name, k)
	}
	f.used[k] = true
	return r
}

func (f *fields) isNull(k string) bool {
	return string(f.raw(k)) == "null"
}

func parseU64(t testing.TB, r json.RawMessage) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.Trim(string(r), `"`), 10, 64)
	if err != nil {
		t.Fatalf("bad integer %s: %v", r, err)
	}
	return v
}

func (f *fields) u64(k string) uint64 {
	f.t.Helper()
	return parseU64(f.t, f.raw(k))
}

func (f *fields) u8(k string) uint8 {
	f.t.Helper()
	v := f.u64(k)
	if v > 255 {
		f.t.Fatalf("%s: %s = %d is not a byte", f.name, k, v)
	}
	return uint8(v)
}

func (f *fields) str(k string) string {
	f.t.Helper()
	var s string
	if err := json.Unmarshal(f.raw(k), &s); err != nil {
		f.t.Fatalf("%s: %s: %v", f.name, k, err)
	}
	return s
}

func (f *fields) boolean(k string) bool {
	f.t.Helper()
	var b bool
	if err := json.Unmarshal(f.raw(k), &b); err != nil {
		f.t.Fatalf("%s: %s: %v", f.name, k, err)
	}
	return b
}

func (f *fields) hexBytes(k string) []byte {
	f.t.Helper()
	b, err := hex.DecodeString(f.str(k))
	if err != nil {
		f.t.Fatalf("%s: %s: %v", f.name, k, err)
	}
	if len(b) == 0 {
		return nil
	}
	return b
}

func (f *fields) list(k string) []json.RawMessage {
	f.t.Helper()
	var l []json.RawMessage
	if err := json.Unmarshal(f.raw(k), &l); err != nil {
		f.t.Fatalf("%s: %s: %v", f.name, k, err)
	}
	return l
}

func (f *fields) u64s(k string) []uint64 {
	f.t.Helper()
	var out []uint64
	for _, r := range f.list(k) {
		out = append(out, parseU64(f.t, r))
	}
	return out
}

func (f *fields) strs(k string) []string {
	f.t.Helper()
	var out []string
	for _, r := range f.list(k) {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			f.t.Fatalf("%s: %s: %v", f.name, k, err)
		}
		out = append(out, s)
	}
	return out
}

func (f *fields) sub(k string) *fields {
	f.t.Helper()
	return f.object(f.raw(k), k)
}

func (f *fields) object(r json.RawMessage, k string) *fields {
	f.t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r, &m); err != nil {
		f.t.Fatalf("%s: %s: %v", f.name, k, err)
	}
	return newFields(f.t, f.name+"."+k, m)
}

// optional helpers: absent keys leave the zero value.
func (f *fields) optU8(k string) uint8 {
	if !f.has(k) {
		return 0
	}
	return f.u8(k)
}

func (f *fields) optBool(k string) bool {
	if !f.has(k) {
		return false
	}
	return f.boolean(k)
}

func (f *fields) optMs(k string) time.Duration {
	if !f.has(k) || f.isNull(k) {
		return 0
	}
	return time.Duration(f.u64(k)) * time.Millisecond
}

func (f *fields) optGroup(k string) lite.OptGroup {
	if !f.has(k) || f.isNull(k) {
		return lite.OptGroup{}
	}
	return lite.OptGroup{Seq: f.u64(k), Valid: true}
}

func (f *fields) done() {
	f.t.Helper()
	for k := range f.m {
		if !f.used[k] {
			f.t.Errorf("%s: field %q not checked by the test", f.name, k)
		}
	}
}

func buildSubscribeOk(f *fields) *lite.SubscribeOk {
	return &lite.SubscribeOk{
		Priority:   f.optU8("priority"),
		Ordered:    f.optBool("ordered"),
		MaxLatency: f.optMs("max_latency_ms"),
		StartGroup: f.optGroup("start_group"),
		EndGroup:   f.optGroup("end_group"),
	}
}

func buildSubscribeDrop(f *fields) *lite.SubscribeDrop {
	return &lite.SubscribeDrop{Start: f.u64("start"), End: f.u64("end"), Error: f.u64("error")}
}

// buildMessage constructs the message a size-prefixed vector describes.
func buildMessage(t *testing.T, kind string, f *fields, v lite.Version) lite.Message {
	t.Helper()
	switch kind {
	case "session_info":
		return &lite.SessionInfo{Bitrate: f.u64("bitrate")}
	case "announce_interest":
		m := &lite.AnnounceInterest{Prefix: f.str("prefix")}
		if f.has("exclude_hop") {
			m.ExcludeHop = f.u64("exclude_hop")
		}
		return m
	case "announce_init":
		return &lite.AnnounceInit{Suffixes: f.strs("suffixes")}
	case "announce":
		m := &lite.Announce{Active: f.boolean("active"), Suffix: f.str("suffix")}
		switch {
		case f.has("hops"):
			m.Hops = f.u64s("hops")
		case f.has("hop_count"):
			if n := f.u64("hop_count"); n > 0 {
				m.Hops = make([]uint64, n)
			}
		}
		return m
	case "subscribe":
		return &lite.Subscribe{
			ID:         f.u64("id"),
			Broadcast:  f.str("broadcast"),
			Track:      f.str("track"),
			Priority:   f.u8("priority"),
			Ordered:    f.optBool("ordered"),
			MaxLatency: f.optMs("max_latency_ms"),
			StartGroup: f.optGroup("start_group"),
			EndGroup:   f.optGroup("end_group"),
		}
	case "subscribe_ok":
		return buildSubscribeOk(f)
	case "subscribe_drop":
		return buildSubscribeDrop(f)
	case "subscribe_update":
		return &lite.SubscribeUpdate{
			Priority:   f.u8("priority"),
			Ordered:    f.optBool("ordered"),
			MaxLatency: f.optMs("max_latency_ms"),
			StartGroup: f.optGroup("start_group"),
			EndGroup:   f.optGroup("end_group"),
		}
	case "fetch":
		return &lite.Fetch{Broadcast: f.str("broadcast"), Track: f.str("track"), Priority: f.u8("priority"), Group: f.u64("group")}
	case "probe":
		return &lite.Probe{Bitrate: f.u64("bitrate"), RTT: f.optMs("rtt_ms")}
	case "goaway":
		return &lite.Goaway{URI: f.str("uri")}
	case "group":
		return &lite.Group{SubscribeID: f.u64("subscribe"), Sequence: f.u64("sequence")}
	case "session_client":
		return &lite.SessionClient{Versions: f.u64s("versions"), Extensions: buildExtensions(f)}
	case "session_server":
		return &lite.SessionServer{Version: f.u64("version"), Extensions: buildExtensions(f)}
	}
	t.Fatalf("no builder for %q", kind)
	return nil
}

func buildExtensions(f *fields) lite.Extensions {
	var out lite.Extensions
	for i, r := range f.list("extensions") {
		e := f.object(r, fmt.Sprintf("extensions[%d]", i))
		out = append(out, lite.Extension{ID: e.u64("id"), Value: e.hexBytes("value_hex")})
		e.done()
	}
	return out
}

func buildParams(f *fields) lite.Params {
	var out lite.Params
	for i, r := range f.list("parameters") {
		p := f.object(r, fmt.Sprintf("parameters[%d]", i))
		id := p.u64("id")
		switch kind := p.str("kind"); kind {
		case "varint":
			out = append(out, lite.Param{ID: id, Value: p.u64("value")})
		case "bytes":
			out = append(out, lite.Param{ID: id, Bytes: p.hexBytes("value_hex")})
		default:
			f.t.Fatalf("%s: unknown parameter kind %q", f.name, kind)
		}
		p.done()
	}
	return out
}

// newLike returns a fresh zero message of the same type as m.
func newLike(m lite.Message) lite.Message {
	return reflect.New(reflect.TypeOf(m).Elem()).Interface().(lite.Message)
}

// controlTypes maps the vectors' stream names to control stream types.
var controlTypes = map[string]lite.ControlType{
	"session":   lite.ControlSession,
	"announce":  lite.ControlAnnounce,
	"subscribe": lite.ControlSubscribe,
	"fetch":     lite.ControlFetch,
	"probe":     lite.ControlProbe,
	"goaway":    lite.ControlGoaway,
}

// openingType is the control stream each message opens.
var openingType = map[string]lite.ControlType{
	"announce_interest": lite.ControlAnnounce,
	"subscribe":         lite.ControlSubscribe,
	"fetch":             lite.ControlFetch,
	"goaway":            lite.ControlGoaway,
}

func expectEOF(t *testing.T, r *wire.Reader) {
	t.Helper()
	if c, err := r.ReadByte(); err != io.EOF {
		t.Errorf("bytes left after the vector: %x, %v", c, err)
	}
}

func TestLiteVectors(t *testing.T) {
	for _, lf := range liteFiles {
		t.Run(lf.file, func(t *testing.T) {
			file := loadFile(t, lf.file)
			if code := parseU64(t, file.VersionCode); code != uint64(lf.version) {
				t.Fatalf("version_code %x, want %x", code, uint64(lf.version))
			}
			if !strings.HasPrefix(file.Version, lf.version.String()) {
				t.Fatalf("version %q does not start with %q", file.Version, lf.version)
			}
			for _, vec := range file.Vectors {
				t.Run(vec.Name, func(t *testing.T) {
					runVector(t, vec, lf.version)
				})
			}
		})
	}
}

func runVector(t *testing.T, vec vector, v lite.Version) {
	want, err := hex.DecodeString(vec.Hex)
	if err != nil {
		t.Fatal(err)
	}
	f := newFields(t, vec.Name, vec.Fields)
	defer f.done()
	decodeOnly := strings.HasSuffix(vec.Name, "_decode_only")
	checkEncode := func(got []byte, err error) {
		t.Helper()
		if decodeOnly {
			return
		}
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encoded\n %x\nwant\n %x", got, want)
		}
	}
	r := wire.NewReader(bytes.NewReader(want))

	switch vec.Message {
	case "control_stream_type":
		ct, ok := controlTypes[f.str("stream")]
		if !ok {
			t.Fatalf("unknown stream %q", f.str("stream"))
		}
		if value := f.u64("value"); uint64(ct) != value {
			t.Fatalf("%s = %d, vector says %d", ct, uint64(ct), value)
		}
		checkEncode(wire.AppendVarint(nil, uint64(ct)), nil)
		got, err := lite.ReadControlType(r, v)
		if ct.Valid(v) {
			if err != nil || got != ct {
				t.Fatalf("ReadControlType = %s, %v", got, err)
			}
		} else if !errors.Is(err, lite.ErrVersion) {
			t.Fatalf("ReadControlType of %s in %s: err = %v, want ErrVersion", ct, v, err)
		}
		expectEOF(t, r)

	case "data_stream_type":
		if s := f.str("stream"); s != "group" {
			t.Fatalf("unknown data stream %q", s)
		}
		if value := f.u64("value"); value != uint64(lite.DataGroup) {
			t.Fatalf("DataGroup = %d, vector says %d", lite.DataGroup, value)
		}
		checkEncode([]byte{byte(lite.DataGroup)}, nil)
		if got, err := lite.ReadDataType(r); err != nil || got != lite.DataGroup {
			t.Fatalf("ReadDataType = %d, %v", got, err)
		}
		expectEOF(t, r)

	case "setup_message_type":
		var typ lite.ControlType
		switch m := f.str("message"); m {
		case "client_setup_compat":
			typ = lite.ClientSetupType
		case "server_setup_compat":
			typ = lite.ServerSetupType
		default:
			t.Fatalf("unknown setup message %q", m)
		}
		if value := f.u64("value"); uint64(typ) != value {
			t.Fatalf("%s = %d, vector says %d", typ, uint64(typ), value)
		}
		checkEncode(wire.AppendVarint(nil, uint64(typ)), nil)
		if got, err := r.ReadVarint(); err != nil || got != uint64(typ) {
			t.Fatalf("ReadVarint = %d, %v", got, err)
		}
		expectEOF(t, r)

	case "client_setup", "server_setup":
		var m lite.Message
		typ := lite.ClientSetupType
		if vec.Message == "client_setup" {
			m = &lite.ClientSetup{Versions: f.u64s("versions"), Params: buildParams(f)}
		} else {
			typ = lite.ServerSetupType
			m = &lite.ServerSetup{Version: f.u64("version"), Params: buildParams(f)}
		}
		if mt := f.u64("message_type"); mt != uint64(typ) {
			t.Fatalf("message_type %d, want %d", mt, uint64(typ))
		}
		checkEncode(lite.AppendU16Message(wire.AppendVarint(nil, uint64(typ)), m, v))
		if got, err := r.ReadVarint(); err != nil || got != uint64(typ) {
			t.Fatalf("message type = %d, %v", got, err)
		}
		body, err := r.ReadU16Message(0)
		if err != nil {
			t.Fatal(err)
		}
		got := newLike(m)
		if err := got.DecodeBody(body, v); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("decoded %+v, want %+v", got, m)
		}
		checkBodyErrors(t, got, body, v)
		expectEOF(t, r)

		// The same through the setup stream helpers.
		viaHelper := newLike(m)
		r2 := wire.NewReader(bytes.NewReader(want))
		switch m := m.(type) {
		case *lite.ClientSetup:
			checkEncode(lite.AppendClientSetup(nil, m))
			err = lite.ReadClientSetup(r2, viaHelper.(*lite.ClientSetup))
		case *lite.ServerSetup:
			checkEncode(lite.AppendServerSetup(nil, m))
			err = lite.ReadServerSetup(r2, viaHelper.(*lite.ServerSetup))
		}
		if err != nil || !reflect.DeepEqual(viaHelper, m) {
			t.Fatalf("setup helper decoded %+v, %v; want %+v", viaHelper, err, m)
		}
		expectEOF(t, r2)

	case "subscribe_response":
		var ok *lite.SubscribeOk
		var drop *lite.SubscribeDrop
		if f.has("ok") {
			of := f.sub("ok")
			ok = buildSubscribeOk(of)
			defer of.done()
		}
		if f.has("drop") {
			df := f.sub("drop")
			drop = buildSubscribeDrop(df)
			defer df.done()
		}
		if f.has("response_type") {
			wantType := lite.ResponseOk
			if drop != nil {
				wantType = lite.ResponseDrop
			}
			if rt := f.u64("response_type"); rt != wantType {
				t.Fatalf("response_type %d, want %d", rt, wantType)
			}
		} else if v >= lite.Lite03 {
			t.Fatal("lite-03+ subscribe response without response_type")
		}
		checkEncode(lite.AppendSubscribeResponse(nil, ok, drop, v))
		gotOk, gotDrop, err := lite.ReadSubscribeResponse(r, v, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotOk, ok) || !reflect.DeepEqual(gotDrop, drop) {
			t.Fatalf("decoded ok=%+v drop=%+v, want ok=%+v drop=%+v", gotOk, gotDrop, ok, drop)
		}
		expectEOF(t, r)

	case "frame":
		payload := f.hexBytes("payload_hex")
		if size := f.u64("size"); size != uint64(len(payload)) {
			t.Fatalf("size %d, payload %d bytes", size, len(payload))
		}
		checkEncode(lite.AppendFrame(nil, payload))
		hdr, err := lite.AppendFrameHeader(nil, len(payload))
		checkEncode(append(hdr, payload...), err)
		got, err := lite.ReadFrame(r, nil, 0)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("ReadFrame = %x, %v", got, err)
		}
		if _, err := lite.ReadFrame(r, nil, 0); err != io.EOF {
			t.Fatalf("ReadFrame at end: %v, want io.EOF", err)
		}

	case "group_stream":
		if st := f.u64("stream_type"); st != uint64(lite.DataGroup) {
			t.Fatalf("stream_type %d", st)
		}
		g := &lite.Group{SubscribeID: f.u64("subscribe"), Sequence: f.u64("sequence")}
		var frames [][]byte
		for _, fr := range f.strs("frames_hex") {
			p, err := hex.DecodeString(fr)
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, p)
		}
		enc, err := lite.AppendGroupHeader(nil, g, v)
		for _, p := range frames {
			if err == nil {
				enc, err = lite.AppendFrame(enc, p)
			}
		}
		checkEncode(enc, err)

		if typ, err := lite.ReadDataType(r); err != nil || typ != lite.DataGroup {
			t.Fatalf("ReadDataType = %d, %v", typ, err)
		}
		var got lite.Group
		if err := lite.ReadMessage(r, &got, v, 0); err != nil || got != *g {
			t.Fatalf("GROUP = %+v, %v; want %+v", got, err, *g)
		}
		var buf []byte
		for i := 0; ; i++ {
			buf, err = lite.ReadFrame(r, buf[:0], 0)
			if err == io.EOF {
				if i != len(frames) {
					t.Fatalf("stream ended after %d frames, want %d", i, len(frames))
				}
				break
			}
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if i >= len(frames) || !bytes.Equal(buf, frames[i]) {
				t.Fatalf("frame %d = %x", i, buf)
			}
		}

	case "session_info", "announce_interest", "announce_init", "announce", "subscribe", "subscribe_ok",
		"subscribe_drop", "subscribe_update", "fetch", "probe", "goaway", "group", "session_client", "session_server":
		m := buildMessage(t, vec.Message, f, v)
		var prefix []byte
		if f.has("stream_type") {
			st := f.u64("stream_type")
			if vec.Message == "group" {
				if st != uint64(lite.DataGroup) {
					t.Fatalf("group stream_type %d", st)
				}
				prefix = []byte{byte(lite.DataGroup)}
			} else {
				ct, ok := openingType[vec.Message]
				if !ok || uint64(ct) != st {
					t.Fatalf("stream_type %d for %s, want %s", st, vec.Message, ct)
				}
				prefix = wire.AppendVarint(nil, st)
			}
		}
		if vec.Message == "group" && prefix != nil {
			checkEncode(lite.AppendGroupHeader(nil, m.(*lite.Group), v))
		} else {
			checkEncode(lite.AppendMessage(prefix, m, v))
		}
		if prefix != nil {
			if vec.Message == "group" {
				if typ, err := lite.ReadDataType(r); err != nil || typ != lite.DataGroup {
					t.Fatalf("ReadDataType = %d, %v", typ, err)
				}
			} else if ct, err := lite.ReadControlType(r, v); err != nil || uint64(ct) != f.u64("stream_type") {
				t.Fatalf("ReadControlType = %s, %v", ct, err)
			}
		}
		body, err := r.ReadMessage(0)
		if err != nil {
			t.Fatal(err)
		}
		got := newLike(m)
		if err := got.DecodeBody(body, v); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("decoded %+v, want %+v", got, m)
		}
		checkBodyErrors(t, got, body, v)
		expectEOF(t, r)

	default:
		t.Fatalf("unknown vector message kind %q: the test must learn it", vec.Message)
	}
}

// checkBodyErrors checks that every truncation of a valid body and the body
// with a trailing byte are refused.
func checkBodyErrors(t *testing.T, m lite.Message, body []byte, v lite.Version) {
	t.Helper()
	fresh := newLike(m)
	if err := fresh.DecodeBody(append(body[:len(body):len(body)], 0), v); !errors.Is(err, wire.ErrTrailing) {
		t.Errorf("body + 00: err = %v, want ErrTrailing", err)
	}
	for cut := range len(body) {
		if err := fresh.DecodeBody(body[:cut], v); err == nil {
			t.Errorf("body cut to %d of %d bytes decoded without error", cut, len(body))
		}
	}
}

// zeroMessages returns a zero value of each version-gated message, keyed as
// in the vectors' unsupported lists.
func zeroMessages() map[string]func(lite.Version) error {
	enc := func(m lite.Message) func(lite.Version) error {
		return func(v lite.Version) error {
			_, err := lite.AppendMessage(nil, m, v)
			return err
		}
	}
	return map[string]func(lite.Version) error{
		"session_info":      enc(&lite.SessionInfo{}),
		"announce_interest": enc(&lite.AnnounceInterest{}),
		"announce_init":     enc(&lite.AnnounceInit{}),
		"announce":          enc(&lite.Announce{}),
		"subscribe":         enc(&lite.Subscribe{}),
		"subscribe_ok":      enc(&lite.SubscribeOk{}),
		"subscribe_update":  enc(&lite.SubscribeUpdate{}),
		"fetch":             enc(&lite.Fetch{}),
		"probe":             enc(&lite.Probe{}),
		"goaway":            enc(&lite.Goaway{}),
		"group":             enc(&lite.Group{}),
		"subscribe_response_drop": func(v lite.Version) error {
			_, err := lite.AppendSubscribeResponse(nil, nil, &lite.SubscribeDrop{}, v)
			return err
		},
	}
}

// TestUnsupportedVectors checks each file's unsupported list against the
// encoders: exactly the listed messages fail, with ErrVersion, and their
// decoders refuse too.
func TestUnsupportedVectors(t *testing.T) {
	decoders := map[string]lite.Message{
		"session_info":  &lite.SessionInfo{},
		"announce_init": &lite.AnnounceInit{},
		"fetch":         &lite.Fetch{},
		"probe":         &lite.Probe{},
		"goaway":        &lite.Goaway{},
		// A DROP cannot be decoded where it cannot be expressed.
		"subscribe_response_drop": &lite.SubscribeDrop{},
	}
	for _, lf := range liteFiles {
		t.Run(lf.file, func(t *testing.T) {
			file := loadFile(t, lf.file)
			unsupported := map[string]bool{}
			for _, u := range file.Unsupported {
				unsupported[u.Message] = true
				dec, ok := decoders[u.Message]
				if !ok {
					t.Fatalf("unknown unsupported message %q (%s)", u.Message, u.Error)
				}
				if err := dec.DecodeBody(nil, lf.version); !errors.Is(err, lite.ErrVersion) {
					t.Errorf("decoding %s in %s: err = %v, want ErrVersion", u.Message, lf.version, err)
				}
			}
			all := zeroMessages()
			for name := range unsupported {
				if _, ok := all[name]; !ok {
					t.Fatalf("unsupported message %q has no encoder check", name)
				}
			}
			for name, encode := range all {
				err := encode(lf.version)
				switch {
				case unsupported[name] && !errors.Is(err, lite.ErrVersion):
					t.Errorf("%s in %s: err = %v, want ErrVersion", name, lf.version, err)
				case !unsupported[name] && err != nil:
					t.Errorf("%s in %s: unexpected error %v", name, lf.version, err)
				}
			}
		})
	}
}
