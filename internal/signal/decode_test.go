package signal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/liveclass/liveclass/internal/apperr"
)

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		in    string
		check func(t *testing.T, m Message)
	}{
		{`{"type":"join","v":1,"token":"abc","muted":true,"resume":""}`, func(t *testing.T, m Message) {
			j := m.(*Join)
			if j.Token != "abc" || !j.Muted || j.V != 1 {
				t.Fatalf("join = %+v", j)
			}
		}},
		{`{"type":"join","v":1,"resume":"k1","class":"c1"}`, func(t *testing.T, m Message) {
			if j := m.(*Join); j.Resume != "k1" || j.Class != "c1" {
				t.Fatalf("join = %+v", j)
			}
		}},
		{`{"type":"offer","id":3,"pc":"pub","sdp":"v=0","tracks":[{"mid":"0","source":"camera","simulcast":true},{"mid":"1","source":"mic"}]}`, func(t *testing.T, m Message) {
			o := m.(*Offer)
			if o.RequestID() != 3 || len(o.Tracks) != 2 || !o.Tracks[0].Simulcast || o.Tracks[1].Source != "mic" {
				t.Fatalf("offer = %+v", o)
			}
		}},
		{`{"type":"answer","pc":"sub","sdp":"v=0"}`, func(t *testing.T, m Message) {
			if a := m.(*Answer); a.SDP != "v=0" {
				t.Fatalf("answer = %+v", a)
			}
		}},
		{`{"type":"candidate","pc":"sub","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"u"}}`, func(t *testing.T, m Message) {
			c := m.(*Candidate)
			if c.PC != "sub" || c.Candidate.SDPMid == nil || *c.Candidate.SDPMid != "0" {
				t.Fatalf("candidate = %+v", c)
			}
		}},
		{`{"type":"subscribe","video":[{"track":"u1/camera","width":320,"height":180}]}`, func(t *testing.T, m Message) {
			if s := m.(*Subscribe); len(s.Video) != 1 || s.Video[0].Width != 320 {
				t.Fatalf("subscribe = %+v", s)
			}
		}},
		{`{"type":"subscribe","video":[]}`, func(t *testing.T, m Message) {
			if s := m.(*Subscribe); len(s.Video) != 0 {
				t.Fatalf("subscribe = %+v", s)
			}
		}},
		{`{"type":"chat","id":9,"to":"hosts","text":"<b>hi</b>"}`, func(t *testing.T, m Message) {
			if c := m.(*Chat); c.To != "hosts" || c.Text != "<b>hi</b>" {
				t.Fatalf("chat = %+v", c)
			}
		}},
		{`{"type":"hand","raised":false}`, func(t *testing.T, m Message) {
			if m.(*Hand).Raised {
				t.Fatal("raised")
			}
		}},
		{`{"type":"mute","participant":"u2"}`, func(t *testing.T, m Message) {
			if p := m.(*ParticipantRequest); p.Type != TypeMute || p.Participant != "u2" {
				t.Fatalf("mute = %+v", p)
			}
		}},
		{`{"type":"media","mic":true,"camera":false,"screen":false}`, func(t *testing.T, m Message) {
			if md := m.(*Media); !md.Mic || md.Camera {
				t.Fatalf("media = %+v", md)
			}
		}},
		{`{"type":"lockMics","locked":true}`, func(t *testing.T, m Message) {
			if l := m.(*LockRequest); !l.Locked || l.Type != TypeLockMics {
				t.Fatalf("lockMics = %+v", l)
			}
		}},
		{`{"type":"breakouts.assign","assignments":{"u1":"b1","u2":""}}`, func(t *testing.T, m Message) {
			if a := m.(*BreakoutsAssign); a.Assignments["u1"] != "b1" || len(a.Assignments) != 2 {
				t.Fatalf("assign = %+v", a)
			}
		}},
		{`{"type":"breakouts.timer","seconds":0}`, func(t *testing.T, m Message) {}},
		{`{"type":"breakouts.visit","group":""}`, func(t *testing.T, m Message) {}},
		{`{"type":"poll.create","question":"Q?","options":["a","b"],"multiple":true}`, func(t *testing.T, m Message) {
			if p := m.(*PollCreate); !p.Multiple || len(p.Options) != 2 {
				t.Fatalf("poll = %+v", p)
			}
		}},
		{`{"type":"poll.vote","poll":"p1","choices":[0,2]}`, func(t *testing.T, m Message) {}},
		{`{"type":"react","emoji":"👍"}`, func(t *testing.T, m Message) {}},
		{`{"type":"end","id":1}`, func(t *testing.T, m Message) {
			if m.MessageType() != TypeEnd || m.RequestID() != 1 {
				t.Fatalf("end = %+v", m)
			}
		}},
		{` {"type":"leave"} `, func(t *testing.T, m Message) {}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tt.check(t, m)
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	tests := []struct {
		in, field string
	}{
		{`not json`, ""},
		{`[]`, ""},
		{`null`, ""},
		{`{"type":"join","v":1,"token":"a"} {}`, ""},
		{`{"type":"join","v":1,"token":"a"`, ""},
		{`{}`, "type"},
		{`{"type":7}`, "type"},
		{`{"type":"bogus"}`, "type"},
		{`{"type":"joined"}`, "type"},
		{`{"type":"join","token":"a"}`, "v"},
		{`{"type":"join","v":2,"token":"a"}`, "v"},
		{`{"type":"join","v":1}`, "token"},
		{`{"type":"join","v":1,"token":"a","extra":1}`, ""},
		{`{"type":"join","v":"1","token":"a"}`, "v"},
		{`{"type":"join","v":1,"token":"` + strings.Repeat("a", maxToken+1) + `"}`, "token"},
		{`{"type":"chat","text":"hi","id":-1}`, "id"},
		{`{"type":"offer","pc":"sub","sdp":"v=0"}`, "pc"},
		{`{"type":"offer","pc":"pub","sdp":""}`, "sdp"},
		{`{"type":"offer","pc":"pub","sdp":"v=0","tracks":[{"mid":"0","source":"webcam"}]}`, "tracks[0].source"},
		{`{"type":"offer","pc":"pub","sdp":"v=0","tracks":[{"mid":"","source":"mic"}]}`, "tracks[0].mid"},
		{`{"type":"answer","pc":"pub","sdp":"v=0"}`, "pc"},
		{`{"type":"candidate","pc":"x","candidate":{"candidate":""}}`, "pc"},
		{`{"type":"candidate","pc":"pub"}`, "candidate"},
		{`{"type":"subscribe"}`, "video"},
		{`{"type":"subscribe","video":[{"track":"","width":1,"height":1}]}`, "video[0].track"},
		{`{"type":"subscribe","video":[{"track":"a/camera","width":-1,"height":1}]}`, "video[0].width"},
		{`{"type":"subscribe","video":[` + strings.Repeat(`{"track":"a","width":1,"height":1},`, 25) + `{"track":"a","width":1,"height":1}]}`, "video"},
		{`{"type":"chat","to":"everyone"}`, "text"},
		{`{"type":"chat","text":""}`, "text"},
		{`{"type":"hand"}`, "raised"},
		{`{"type":"hand","raised":null}`, "raised"},
		{`{"type":"hand","raised":"yes"}`, "raised"},
		{`{"type":"mute"}`, "participant"},
		{`{"type":"mute","participant":""}`, "participant"},
		{`{"type":"media","mic":true}`, "camera"},
		{`{"type":"lock"}`, "locked"},
		{`{"type":"breakouts.create","count":0}`, "count"},
		{`{"type":"breakouts.assign","assignments":{}}`, "assignments"},
		{`{"type":"breakouts.auto","mode":"alphabetical"}`, "mode"},
		{`{"type":"breakouts.timer","seconds":-5}`, "seconds"},
		{`{"type":"react","emoji":""}`, "emoji"},
		{`{"type":"poll.create","question":"","options":["a","b"]}`, "question"},
		{`{"type":"poll.create","question":"q","options":["1","2","3","4","5","6","7","8","9","10","11"]}`, "options"},
		{`{"type":"poll.vote","poll":"p","choices":[]}`, "choices"},
		{`{"type":"poll.close"}`, "poll"},
		{`{"type":"end","reason":"x"}`, ""},
		{"{\"type\":\"chat\",\"text\":\"\xff\"}", ""},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			m, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode accepted it as %#v", m)
			}
			if !apperr.Is(err, apperr.Invalid) {
				t.Fatalf("error %v is not Invalid", err)
			}
			if f := apperr.FieldOf(err); f != tt.field {
				t.Fatalf("field = %q, want %q (%v)", f, tt.field, err)
			}
		})
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	sdp := strings.Repeat("a", MaxMessageSize)
	_, err := Decode([]byte(`{"type":"answer","pc":"sub","sdp":"` + sdp + `"}`))
	if !apperr.Is(err, apperr.Invalid) || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("oversized message: %v", err)
	}
}

// FuzzDecode checks that Decode never panics, and that whatever it
// accepts survives a round trip through its own encoding.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"type":"join","v":1,"token":"t"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned a message with error %v", err)
			}
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal %#v: %v", m, err)
		}
		m2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		if m2.MessageType() != m.MessageType() || m2.RequestID() != m.RequestID() {
			t.Fatalf("round trip changed %s into %s", data, b)
		}
	})
}

// TestSeedCorpus keeps the committed seeds realistic: each decodes,
// except those named bad_*, which each fail.
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 12 {
		t.Fatalf("%d seeds, want at least 12", len(entries))
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s is not a fuzz seed file", e.Name())
		}
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		_, err = Decode([]byte(data))
		if bad := strings.HasPrefix(e.Name(), "bad_"); bad != (err != nil) {
			t.Errorf("%s: Decode error = %v", e.Name(), err)
		}
	}
}
