package qmux

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moqgo/moq/internal/vectortest"
	"github.com/moqgo/moq/internal/wire"
)

// vectorFile is qmux.json (@moq/qmux 0.0.6) or qmux-new.json (0.3.3); each
// field is in one of them or both.
type vectorFile struct {
	Limits struct {
		MaxFrameSize              int `json:"max_frame_size"`
		MaxStreamFramePayload     int `json:"max_stream_frame_payload"`
		MaxFrameSizeQMux00        int `json:"max_frame_size_qmux00"`
		DefaultMaxRecordSize      int `json:"default_max_record_size"`
		MaxStreamFramePayloadSent int `json:"max_stream_frame_payload_sent"`
	} `json:"limits"`
	Negotiation struct {
		Offers []struct {
			Case                 string   `json:"case"`
			ApplicationProtocols []string `json:"application_protocols"`
			URL                  string   `json:"url"`
			Offer                []string `json:"sec_websocket_protocol_offer"`
		} `json:"offers"`
		Selections []struct {
			ServerSelected  string  `json:"server_selected"`
			Framing         string  `json:"framing"`
			SessionProtocol string  `json:"session_protocol"`
			FirstFrameHex   *string `json:"first_frame_sent_hex"`
		} `json:"selections"`
		LiteConnectOffer   []string `json:"lite_connect_offer"`
		MoqNetConnectOffer struct {
			Protocols []string `json:"protocols"`
		} `json:"moq_net_connect_offer"`
		ServerSelectionExamples []struct {
			ClientOffer     json.RawMessage `json:"client_offer"`
			ServerProtocols []string        `json:"server_protocols"`
		} `json:"server_selection_examples"`
	} `json:"negotiation"`
	Vectors     []vector `json:"vectors"`
	Unsupported []struct {
		Variant string `json:"variant"`
		Message string `json:"message"`
	} `json:"unsupported"`
}

type vector struct {
	Name    string                     `json:"name"`
	Message string                     `json:"message"`
	Fields  map[string]json.RawMessage `json:"fields"`
	Hex     string                     `json:"hex"`
}

// vectorFiles are the vector files with the layout their package writes.
var vectorFiles = []struct {
	name   string
	layout Layout
}{
	{"qmux.json", Layout006},
	{"qmux-new.json", Layout03},
}

// loadVectors returns qmux.json, the vectors of @moq/qmux 0.0.6.
func loadVectors(tb testing.TB) *vectorFile {
	tb.Helper()
	return loadVectorFile(tb, "qmux.json")
}

// loadVectors03 returns qmux-new.json, the vectors of @moq/qmux 0.3.3.
func loadVectors03(tb testing.TB) *vectorFile {
	tb.Helper()
	return loadVectorFile(tb, "qmux-new.json")
}

func loadVectorFile(tb testing.TB, name string) *vectorFile {
	tb.Helper()
	var f vectorFile
	if err := json.Unmarshal(vectortest.Load(tb, name), &f); err != nil {
		tb.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		tb.Fatalf("%s has no vectors", name)
	}
	return &f
}

func (v *vector) bytes(tb testing.TB) []byte {
	tb.Helper()
	b, err := hex.DecodeString(v.Hex)
	if err != nil {
		tb.Fatalf("%s: bad hex: %v", v.Name, err)
	}
	return b
}

// num reads an integer field that is a JSON number or a decimal string.
func (v *vector) num(tb testing.TB, key string) uint64 {
	tb.Helper()
	raw, ok := v.Fields[key]
	if !ok {
		tb.Fatalf("%s: missing field %q", v.Name, key)
	}
	s := strings.Trim(string(raw), `"`)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		tb.Fatalf("%s: field %q = %s: %v", v.Name, key, raw, err)
	}
	return n
}

func (v *vector) str(tb testing.TB, key string) string {
	tb.Helper()
	var s string
	if err := json.Unmarshal(v.Fields[key], &s); err != nil {
		tb.Fatalf("%s: field %q: %v", v.Name, key, err)
	}
	return s
}

func (v *vector) boolean(tb testing.TB, key string) bool {
	tb.Helper()
	var b bool
	if err := json.Unmarshal(v.Fields[key], &b); err != nil {
		tb.Fatalf("%s: field %q: %v", v.Name, key, err)
	}
	return b
}

func (v *vector) has(key string) bool {
	_, ok := v.Fields[key]
	return ok
}

func (v *vector) framing(tb testing.TB) Framing {
	tb.Helper()
	switch s := v.str(tb, "variant"); s {
	case "qmux-00":
		return QMux00
	case "webtransport":
		return WebTransport
	default:
		tb.Fatalf("%s: unknown variant %q", v.Name, s)
		return 0
	}
}

// framings returns the framings of this package the vector applies to: its
// "variant" (qmux.json) or those of its "variants" (qmux-new.json) other than
// qmux-01 and qmux-02, which this package does not implement.
func (v *vector) framings(tb testing.TB) []Framing {
	tb.Helper()
	if v.has("variant") {
		return []Framing{v.framing(tb)}
	}
	var variants []string
	if err := json.Unmarshal(v.Fields["variants"], &variants); err != nil {
		tb.Fatalf("%s: variants: %v", v.Name, err)
	}
	var out []Framing
	for _, s := range variants {
		switch s {
		case "qmux-00":
			out = append(out, QMux00)
		case "webtransport":
			out = append(out, WebTransport)
		case "qmux-01", "qmux-02":
		default:
			tb.Fatalf("%s: unknown variant %q", v.Name, s)
		}
	}
	return out
}

// frame builds the Frame a vector describes.
func (v *vector) frame(tb testing.TB) Frame {
	tb.Helper()
	f := Frame{Type: v.num(tb, "frame_type")}
	switch v.Message {
	case "stream":
		data, err := hex.DecodeString(v.str(tb, "data_hex"))
		if err != nil {
			tb.Fatal(err)
		}
		f.Kind, f.StreamID, f.Data, f.Fin = KindStream, v.num(tb, "stream_id"), data, v.boolean(tb, "fin")
		if v.has("offset") {
			f.Offset = v.num(tb, "offset")
		}
	case "reset_stream":
		f.Kind, f.StreamID, f.Code = KindResetStream, v.num(tb, "stream_id"), v.num(tb, "code")
		if v.has("final_size") {
			f.FinalSize = v.num(tb, "final_size")
		}
	case "stop_sending":
		f.Kind, f.StreamID, f.Code = KindStopSending, v.num(tb, "stream_id"), v.num(tb, "code")
	case "connection_close", "application_close":
		// qmux.json names both close frames connection_close; the frame type tells.
		f.Kind = KindApplicationClose
		if f.Type == typeConnectionClose {
			f.Kind = KindConnectionClose
		}
		f.Code, f.Reason = v.num(tb, "code"), v.str(tb, "reason")
	case "max_data":
		f.Kind, f.Max = KindMaxData, v.num(tb, "max")
	case "max_stream_data":
		f.Kind, f.StreamID, f.Max = KindMaxStreamData, v.num(tb, "stream_id"), v.num(tb, "max")
	case "max_streams_bidi":
		f.Kind, f.Max = KindMaxStreamsBidi, v.num(tb, "max")
	case "max_streams_uni":
		f.Kind, f.Max = KindMaxStreamsUni, v.num(tb, "max")
	case "data_blocked":
		f.Kind, f.Limit = KindDataBlocked, v.num(tb, "limit")
	case "stream_data_blocked":
		f.Kind, f.StreamID, f.Limit = KindStreamDataBlocked, v.num(tb, "stream_id"), v.num(tb, "limit")
	case "streams_blocked_bidi":
		f.Kind, f.Limit = KindStreamsBlockedBidi, v.num(tb, "limit")
	case "streams_blocked_uni":
		f.Kind, f.Limit = KindStreamsBlockedUni, v.num(tb, "limit")
	case "transport_parameters":
		var p map[string]json.RawMessage
		if err := json.Unmarshal(v.Fields["params"], &p); err != nil {
			tb.Fatalf("%s: params: %v", v.Name, err)
		}
		f.Kind = KindTransportParameters
		for key, raw := range p {
			if key == "reset_stream_at" {
				if err := json.Unmarshal(raw, &f.Params.ResetStreamAt); err != nil {
					tb.Fatalf("%s: params.%s: %v", v.Name, key, err)
				}
				continue
			}
			dst := map[string]*uint64{
				"max_idle_timeout":                    &f.Params.MaxIdleTimeout,
				"initial_max_data":                    &f.Params.InitialMaxData,
				"initial_max_stream_data_bidi_local":  &f.Params.InitialMaxStreamDataBidiLocal,
				"initial_max_stream_data_bidi_remote": &f.Params.InitialMaxStreamDataBidiRemote,
				"initial_max_stream_data_uni":         &f.Params.InitialMaxStreamDataUni,
				"initial_max_streams_bidi":            &f.Params.InitialMaxStreamsBidi,
				"initial_max_streams_uni":             &f.Params.InitialMaxStreamsUni,
				"max_datagram_frame_size":             &f.Params.MaxDatagramFrameSize,
				"max_record_size":                     &f.Params.MaxRecordSize,
			}[key]
			if dst == nil {
				tb.Fatalf("%s: unknown parameter %q", v.Name, key)
			}
			n, err := strconv.ParseUint(strings.Trim(string(raw), `"`), 10, 64)
			if err != nil {
				tb.Fatalf("%s: params.%s = %s: %v", v.Name, key, raw, err)
			}
			*dst = n
		}
	case "ignored":
		if !v.boolean(tb, "ignored") {
			tb.Fatalf("%s: ignored = false", v.Name)
		}
		f.Kind = KindIgnored
	default:
		tb.Fatalf("%s: unknown message %q", v.Name, v.Message)
	}
	return f
}

func sameFrame(a, b Frame) bool {
	if !bytes.Equal(a.Data, b.Data) {
		return false
	}
	a.Data, b.Data = nil, nil
	return reflect.DeepEqual(a, b)
}

// TestVectors checks every vector of qmux.json (@moq/qmux 0.0.6) and
// qmux-new.json (0.3.3) in the framings this package implements: the frame
// encodes to the vector's bytes in the layout of the package that wrote it
// (unless the vector is decode-only), and the bytes decode to the frame, using
// all of them, whichever layout the decoder expects.
func TestVectors(t *testing.T) {
	for _, file := range vectorFiles {
		t.Run(file.name, func(t *testing.T) {
			vf := loadVectorFile(t, file.name)
			kinds := map[string]int{}
			skipped := 0
			for _, v := range vf.Vectors {
				t.Run(v.Name, func(t *testing.T) {
					want := v.bytes(t)
					if v.Message == "stream_id" {
						testStreamIDVector(t, &v, want)
						kinds[v.Message]++
						return
					}
					framings := v.framings(t)
					if len(framings) == 0 {
						skipped++ // qmux-01/02 only: records, pings, datagrams
						return
					}
					for _, framing := range framings {
						testFrameVector(t, &v, vf, framing, file.layout, want)
					}
					kinds[v.Message]++
				})
			}
			// Every kind of frame is covered, so an empty or renamed file cannot pass silently.
			wantKinds := []string{"stream", "reset_stream", "stop_sending", "connection_close", "max_data",
				"max_stream_data", "max_streams_bidi", "max_streams_uni", "data_blocked", "stream_data_blocked",
				"streams_blocked_bidi", "streams_blocked_uni", "transport_parameters"}
			if file.layout == Layout006 {
				wantKinds = append(wantKinds, "ignored", "stream_id")
			} else {
				wantKinds = append(wantKinds, "application_close")
			}
			for _, m := range wantKinds {
				if kinds[m] == 0 {
					t.Errorf("no passing vector for %q", m)
				}
			}
			if file.layout == Layout03 && skipped >= len(vf.Vectors)/2 {
				t.Errorf("%d of %d vectors skipped as qmux-01/02 only", skipped, len(vf.Vectors))
			}
		})
	}
}

func testFrameVector(t *testing.T, v *vector, vf *vectorFile, framing Framing, layout Layout, want []byte) {
	t.Helper()
	f := v.frame(t)
	if !strings.HasSuffix(v.Name, "_decode_only") {
		got, err := AppendFrameLayout(nil, &f, framing, layout)
		if err != nil {
			t.Fatalf("%v: AppendFrameLayout: %v", framing, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: AppendFrameLayout = %x, want %x", framing, got, want)
		}
	}
	for _, expect := range []Layout{Layout006, Layout03} {
		got, n, err := ParseFrameLayout(want, framing, expect)
		if err != nil {
			t.Fatalf("%v, expecting %v: %v", framing, expect, err)
		}
		if n != len(want) {
			t.Errorf("%v, expecting %v: consumed %d of %d bytes", framing, expect, n, len(want))
		}
		if f.Kind == KindStream && !v.has("offset") {
			got.Offset = 0 // qmux.json: 0.0.6 does not report offsets
		}
		if f.Kind == KindTransportParameters && got.Params.MaxRecordSize == 0 && vf.Limits.DefaultMaxRecordSize != 0 {
			// qmux-new.json reports the value in effect: absent means the default.
			got.Params.MaxRecordSize = uint64(vf.Limits.DefaultMaxRecordSize)
		}
		if !sameFrame(got, f) {
			t.Errorf("%v, expecting %v: ParseFrameLayout = %+v, want %+v", framing, expect, got, f)
		}
	}
}

func testStreamIDVector(t *testing.T, v *vector, want []byte) {
	var dir uint64
	switch d := v.str(t, "direction"); d {
	case "bidi":
	case "uni":
		dir = 1
	default:
		t.Fatalf("direction %q", d)
	}
	id := v.num(t, "index")<<2 | dir<<1
	server := v.boolean(t, "server_initiated")
	if server {
		id |= 1
	}
	if want := v.num(t, "stream_id"); id != want {
		t.Fatalf("stream id = %d, want %d", id, want)
	}
	if got := wire.AppendVarint(nil, id); !bytes.Equal(got, want) {
		t.Fatalf("varint(%d) = %x, want %x", id, got, want)
	}
	// The session derives the same id for the stream it opens.
	s := newSessionState(QMux00, "", server)
	defer s.cancel(nil)
	s.peerMaxStreams = [2]uint64{1 << 20, 1 << 20}
	s.paramsReceived = true
	s.nextLocal[dir] = v.num(t, "index")
	st, err := s.open(t.Context(), int(dir))
	if err != nil {
		t.Fatal(err)
	}
	if st.id != id {
		t.Fatalf("session opened stream %d, want %d", st.id, id)
	}
}

func TestUnsupportedFrames(t *testing.T) {
	vf := loadVectors(t)
	if len(vf.Unsupported) == 0 {
		t.Fatal("no unsupported entries")
	}
	kinds := map[string]Kind{
		"max_data": KindMaxData, "max_stream_data": KindMaxStreamData, "max_streams_bidi": KindMaxStreamsBidi,
		"max_streams_uni": KindMaxStreamsUni, "data_blocked": KindDataBlocked,
		"stream_data_blocked": KindStreamDataBlocked, "transport_parameters": KindTransportParameters,
	}
	for _, u := range vf.Unsupported {
		if u.Variant != "webtransport" {
			t.Fatalf("unexpected variant %q", u.Variant)
		}
		k, ok := kinds[u.Message]
		if !ok {
			t.Fatalf("unknown message %q", u.Message)
		}
		if _, err := AppendFrame(nil, &Frame{Kind: k}, WebTransport); !errors.Is(err, ErrUnsupportedFrame) {
			t.Errorf("%s in the legacy framing: err = %v, want ErrUnsupportedFrame", u.Message, err)
		}
		if _, err := AppendFrame(nil, &Frame{Kind: k}, QMux00); err != nil {
			t.Errorf("%s in qmux-00: %v", u.Message, err)
		}
	}
	if _, err := AppendFrame(nil, &Frame{Kind: KindConnectionClose}, WebTransport); !errors.Is(err, ErrUnsupportedFrame) {
		t.Errorf("CONNECTION_CLOSE 0x1c in the legacy framing: err = %v, want ErrUnsupportedFrame", err)
	}
	// @moq/qmux 0.3.3 refuses the same flow-control frames in the legacy framing
	// (and pings and datagrams, which this package has no frames for), but
	// writes CONNECTION_CLOSE there as 0x1c.
	vf03 := loadVectors03(t)
	checked := 0
	for _, u := range vf03.Unsupported {
		if u.Variant != "webtransport" {
			t.Fatalf("unexpected variant %q", u.Variant)
		}
		k, ok := kinds[u.Message]
		if !ok {
			continue
		}
		if _, err := AppendFrameLayout(nil, &Frame{Kind: k}, WebTransport, Layout03); !errors.Is(err, ErrUnsupportedFrame) {
			t.Errorf("%s in the legacy framing of 0.3: err = %v, want ErrUnsupportedFrame", u.Message, err)
		}
		checked++
	}
	if checked == 0 {
		t.Error("qmux-new.json lists no unsupported frame this package has")
	}
	if b, err := AppendFrameLayout(nil, &Frame{Kind: KindConnectionClose, Code: 7, Reason: "x"}, WebTransport, Layout03); err != nil || hex.EncodeToString(b) != "1c0778" {
		t.Errorf("CONNECTION_CLOSE in the legacy framing of 0.3: %x, %v; want 1c0778", b, err)
	}
}

func TestLimitsVector(t *testing.T) {
	vf := loadVectors(t)
	if vf.Limits.MaxFrameSize != MaxFrameSize || vf.Limits.MaxStreamFramePayload != MaxStreamPayload {
		t.Fatalf("limits %+v, want %d / %d", vf.Limits, MaxFrameSize, MaxStreamPayload)
	}
	// @moq/qmux 0.3.3 accepts qmux-00 frames of the same size, and sends STREAM
	// payloads no larger than we accept.
	vf03 := loadVectors03(t)
	if vf03.Limits.MaxFrameSizeQMux00 != MaxFrameSize || vf03.Limits.MaxStreamFramePayloadSent > MaxStreamPayload {
		t.Fatalf("0.3.3 limits %+v, want %d and at most %d", vf03.Limits, MaxFrameSize, MaxStreamPayload)
	}
	// A full STREAM frame fits the frame size for any stream id, with the
	// largest offset too.
	f := Frame{Kind: KindStream, StreamID: wire.MaxVarint, Offset: wire.MaxVarint, Data: make([]byte, MaxStreamPayload), Fin: true}
	for _, framing := range []Framing{QMux00, WebTransport} {
		for _, layout := range []Layout{Layout006, Layout03} {
			b, err := AppendFrameLayout(nil, &f, framing, layout)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > MaxFrameSize {
				t.Errorf("%v, %v: full STREAM frame is %d bytes, more than %d", framing, layout, len(b), MaxFrameSize)
			}
		}
	}
}

// TestNegotiationVectors03 checks the offer of @moq/net 0.3.4: a server picks
// a qmux-00 subprotocol from it (qmux-01 and -02 are not implemented here),
// with the application protocol when the client offered it on qmux-00.
func TestNegotiationVectors03(t *testing.T) {
	n := loadVectors03(t).Negotiation
	offer := n.MoqNetConnectOffer.Protocols
	if len(offer) == 0 || len(n.ServerSelectionExamples) == 0 {
		t.Fatal("negotiation section is empty")
	}
	for _, ex := range n.ServerSelectionExamples {
		client := offer
		if err := json.Unmarshal(ex.ClientOffer, &client); err != nil {
			client = offer // "@moq/net connect()"
		}
		want := SubprotocolQMux00 // the application protocol is then negotiated in-band
		if p := SubprotocolQMux00 + "." + ex.ServerProtocols[0]; slices.Contains(client, p) {
			want = p
		}
		sel := Select(client, ex.ServerProtocols)
		if framing, _ := ParseSubprotocol(sel); sel != want || framing != QMux00 {
			t.Errorf("Select(%q, %q) = %q (%v); want %q", client, ex.ServerProtocols, sel, framing, want)
		}
	}
}

func TestNegotiationVectors(t *testing.T) {
	vf := loadVectors(t)
	n := vf.Negotiation
	if len(n.Offers) == 0 || len(n.Selections) == 0 {
		t.Fatal("negotiation section is empty")
	}
	for _, o := range n.Offers {
		t.Run("offer/"+o.Case, func(t *testing.T) {
			if got := Offer(o.ApplicationProtocols); !reflect.DeepEqual(got, o.Offer) {
				t.Errorf("Offer(%q) = %q, want %q", o.ApplicationProtocols, got, o.Offer)
			}
		})
	}
	if got := Offer(nil); !reflect.DeepEqual(got, n.LiteConnectOffer) {
		t.Errorf("Offer(nil) = %q, want the @moq/lite offer %q", got, n.LiteConnectOffer)
	}
	params, err := AppendFrame(nil, &Frame{Kind: KindTransportParameters, Params: defaultTransportParams}, QMux00)
	if err != nil {
		t.Fatal(err)
	}
	for _, sel := range n.Selections {
		t.Run("select/"+sel.ServerSelected, func(t *testing.T) {
			framing, proto := ParseSubprotocol(sel.ServerSelected)
			if framing.String() != sel.Framing || proto != sel.SessionProtocol {
				t.Errorf("ParseSubprotocol(%q) = %v, %q; want %s, %q", sel.ServerSelected, framing, proto, sel.Framing, sel.SessionProtocol)
			}
			// The first frame a session sends: the parameters in qmux-00, nothing in the legacy framing.
			s := newSessionState(framing, proto, true)
			defer s.cancel(nil)
			s.mu.Lock()
			first := s.nextFrameLocked(nil)
			s.mu.Unlock()
			switch {
			case sel.FirstFrameHex == nil && first != nil:
				t.Errorf("first frame %x, want none", first)
			case sel.FirstFrameHex != nil && hex.EncodeToString(first) != *sel.FirstFrameHex:
				t.Errorf("first frame %x, want %s", first, *sel.FirstFrameHex)
			}
			if sel.FirstFrameHex != nil && !bytes.Equal(first, params) {
				t.Errorf("first frame %x is not the default transport parameters %x", first, params)
			}
		})
	}
}
