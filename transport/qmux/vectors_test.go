package qmux

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/moqgo/moq/internal/vectortest"
	"github.com/moqgo/moq/internal/wire"
)

type vectorFile struct {
	Limits struct {
		MaxFrameSize          int `json:"max_frame_size"`
		MaxStreamFramePayload int `json:"max_stream_frame_payload"`
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
		LiteConnectOffer []string `json:"lite_connect_offer"`
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

func loadVectors(tb testing.TB) *vectorFile {
	tb.Helper()
	var f vectorFile
	if err := json.Unmarshal(vectortest.Load(tb, "qmux.json"), &f); err != nil {
		tb.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		tb.Fatal("qmux.json has no vectors")
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
	case "reset_stream":
		f.Kind, f.StreamID, f.Code = KindResetStream, v.num(tb, "stream_id"), v.num(tb, "code")
	case "stop_sending":
		f.Kind, f.StreamID, f.Code = KindStopSending, v.num(tb, "stream_id"), v.num(tb, "code")
	case "connection_close":
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
		var p map[string]uint64
		if err := json.Unmarshal(v.Fields["params"], &p); err != nil {
			tb.Fatalf("%s: params: %v", v.Name, err)
		}
		if len(p) != 6 {
			tb.Fatalf("%s: %d params, want 6", v.Name, len(p))
		}
		f.Kind = KindTransportParameters
		f.Params = TransportParams{
			InitialMaxData:                 p["initial_max_data"],
			InitialMaxStreamDataBidiLocal:  p["initial_max_stream_data_bidi_local"],
			InitialMaxStreamDataBidiRemote: p["initial_max_stream_data_bidi_remote"],
			InitialMaxStreamDataUni:        p["initial_max_stream_data_uni"],
			InitialMaxStreamsBidi:          p["initial_max_streams_bidi"],
			InitialMaxStreamsUni:           p["initial_max_streams_uni"],
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

func TestVectors(t *testing.T) {
	vf := loadVectors(t)
	kinds := map[string]int{}
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			want := v.bytes(t)
			if v.Message == "stream_id" {
				testStreamIDVector(t, &v, want)
				kinds[v.Message]++
				return
			}
			framing := v.framing(t)
			f := v.frame(t)
			if !strings.HasSuffix(v.Name, "_decode_only") {
				got, err := AppendFrame(nil, &f, framing)
				if err != nil {
					t.Fatalf("AppendFrame: %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("AppendFrame = %x, want %x", got, want)
				}
			}
			got, n, err := ParseFrame(want, framing)
			if err != nil {
				t.Fatalf("ParseFrame: %v", err)
			}
			if n != len(want) {
				t.Errorf("ParseFrame consumed %d of %d bytes", n, len(want))
			}
			if !sameFrame(got, f) {
				t.Errorf("ParseFrame = %+v, want %+v", got, f)
			}
			kinds[v.Message]++
		})
	}
	// Every kind of frame is covered, so an empty or renamed file cannot pass silently.
	for _, m := range []string{"stream", "reset_stream", "stop_sending", "connection_close", "max_data",
		"max_stream_data", "max_streams_bidi", "max_streams_uni", "data_blocked", "stream_data_blocked",
		"streams_blocked_bidi", "streams_blocked_uni", "transport_parameters", "ignored", "stream_id"} {
		if kinds[m] == 0 {
			t.Errorf("no passing vector for %q", m)
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
}

func TestLimitsVector(t *testing.T) {
	vf := loadVectors(t)
	if vf.Limits.MaxFrameSize != MaxFrameSize || vf.Limits.MaxStreamFramePayload != MaxStreamPayload {
		t.Fatalf("limits %+v, want %d / %d", vf.Limits, MaxFrameSize, MaxStreamPayload)
	}
	// A full STREAM frame fits the frame size for any stream id.
	f := Frame{Kind: KindStream, StreamID: wire.MaxVarint, Data: make([]byte, MaxStreamPayload), Fin: true}
	for _, framing := range []Framing{QMux00, WebTransport} {
		b, err := AppendFrame(nil, &f, framing)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxFrameSize {
			t.Errorf("%v: full STREAM frame is %d bytes, more than %d", framing, len(b), MaxFrameSize)
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
