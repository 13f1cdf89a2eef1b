package interop

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/token"
)

// tokenPackageVersion is the @moq/token release the token package must
// interoperate with (pinned in package.json).
const tokenPackageVersion = "0.2.3"

// TestTokenInterop checks both directions against @moq/token, for every
// algorithm it supports: tokens `moq token sign` and the token package sign
// verify in @moq/token with the same claims, and tokens @moq/token signs,
// with keys it generated and with keys `moq token generate` wrote, verify in
// Go (the CLI with --key and --key-dir, and the package) with the same
// claims. Each side also refuses what the other must refuse.
func TestTokenInterop(t *testing.T) {
	node := requireTokenPackage(t)
	moqBin := buildCLI(t)
	// The algorithms run in parallel after this function returns.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	js := startTokenJS(t, ctx, node)
	if v := js.call(t, map[string]any{"op": "version"})["version"]; v != tokenPackageVersion {
		t.Fatalf("@moq/token %v is installed, want %s; run `npm ci` in tests/interop", v, tokenPackageVersion)
	}
	for _, alg := range token.Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			e := &tokenEnv{t: t, ctx: ctx, js: js, moq: moqBin, alg: alg, dir: t.TempDir()}
			e.setup()
			t.Run("go-signs", e.testGoSigns)
			t.Run("js-signs-js-key", e.testJSSignsJSKey)
			t.Run("js-signs-go-key", e.testJSSignsGoKey)
		})
	}
}

// requireTokenPackage is requireNode for @moq/token.
func requireTokenPackage(t *testing.T) string {
	t.Helper()
	node := requireNode(t)
	if _, err := os.Stat(filepath.Join("node_modules", "@moq", "token", "package.json")); err != nil {
		msg := "@moq/token is not installed; run `npm ci` in tests/interop"
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: the interop suite is required under CI", msg)
		}
		t.Skipf("%s: the token interop test is skipped", msg)
	}
	return node
}

// tokenJS is a running token.mjs: one JSON request and response per line.
type tokenJS struct {
	mu     sync.Mutex
	ctx    context.Context
	stdin  io.WriteCloser
	lines  chan string
	done   chan error
	stderr *lockedBuffer
}

func startTokenJS(t *testing.T, ctx context.Context, node string) *tokenJS {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, "token.mjs")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	js := &tokenJS{ctx: ctx, stdin: stdin, lines: make(chan string, 1), done: make(chan error, 1), stderr: &lockedBuffer{}}
	cmd.Stderr = js.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			js.lines <- sc.Text()
		}
		js.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-js.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-js.done
		}
		if t.Failed() {
			t.Logf("token.mjs stderr:\n%s", js.stderr)
		}
	})
	return js
}

// call sends one request and returns the response.
func (js *tokenJS) call(t *testing.T, req map[string]any) map[string]any {
	t.Helper()
	js.mu.Lock()
	defer js.mu.Unlock()
	line, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.stdin.Write(append(line, '\n')); err != nil {
		t.Fatalf("token.mjs: %v; stderr:\n%s", err, js.stderr)
	}
	select {
	case out := <-js.lines:
		var res map[string]any
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("token.mjs answered %q: %v", out, err)
		}
		return res
	case err := <-js.done:
		js.done <- err
		t.Fatalf("token.mjs exited (%v); stderr:\n%s", err, js.stderr)
	case <-js.ctx.Done():
		t.Fatalf("token.mjs did not answer %s: %v", line, js.ctx.Err())
	}
	return nil
}

// mustCall is call for a request that must succeed.
func (js *tokenJS) mustCall(t *testing.T, req map[string]any) map[string]any {
	t.Helper()
	res := js.call(t, req)
	if msg, failed := res["error"]; failed {
		t.Fatalf("@moq/token %s: %v", req["op"], msg)
	}
	return res
}

// tokenEnv is one algorithm's keys: ours (from `moq token generate`) and
// @moq/token's, each in a key file and in a key directory under its kid.
type tokenEnv struct {
	t   *testing.T
	ctx context.Context
	js  *tokenJS
	moq string
	alg token.Algorithm
	dir string

	goKey, goPub, goKeyDir string // our signing key, the file that verifies, its key directory
	jsKey, jsPub, jsKeyDir string // the same for @moq/token's key
}

// verifyFile is where a key directory keeps the key that verifies kid.
func verifyFile(dir, kid string) string { return filepath.Join(dir, kid+".jwk") }

func (e *tokenEnv) setup() {
	t := e.t
	e.goKeyDir, e.jsKeyDir = filepath.Join(e.dir, "go-keys"), filepath.Join(e.dir, "js-keys")
	for _, d := range []string{e.goKeyDir, e.jsKeyDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// Ours: base64url files written by the CLI.
	goKid := "go-" + string(e.alg)
	e.goKey = filepath.Join(e.dir, "go.jwk")
	args := []string{"token", "generate", "--algorithm", string(e.alg), "--id", goKid, "--out", e.goKey}
	if e.alg.Symmetric() {
		e.goPub = e.goKey
	} else {
		e.goPub = verifyFile(e.goKeyDir, goKid)
		args = append(args, "--public", e.goPub)
	}
	e.runMoq("", args...)
	if e.alg.Symmetric() {
		copyFile(t, e.goKey, verifyFile(e.goKeyDir, goKid))
	}

	// @moq/token's: JSON files, as its CLI writes them.
	jsKid := "js-" + string(e.alg)
	res := e.js.mustCall(t, map[string]any{"op": "generate", "alg": string(e.alg), "kid": jsKid})
	e.jsKey = filepath.Join(e.dir, "js.jwk")
	writeJSON(t, e.jsKey, res["key"])
	e.jsPub = e.jsKey
	verifying := res["key"]
	if !e.alg.Symmetric() {
		e.jsPub, verifying = filepath.Join(e.dir, "js.pub"), res["public"]
		writeJSON(t, e.jsPub, verifying)
	}
	writeJSON(t, verifyFile(e.jsKeyDir, jsKid), verifying)
}

// testGoSigns: tokens from the CLI and the package verify in @moq/token.
func (e *tokenEnv) testGoSigns(t *testing.T) {
	cli := strings.TrimSpace(e.runMoq("", "token", "sign", "--key", e.goKey, "--root", "demo/room",
		"--publish", "alice", "--subscribe", "", "--subscribe", "bob/cam", "--expires", "1h"))
	want := token.Claims{Root: "demo/room", Publish: []string{"alice"}, Subscribe: []string{"", "bob/cam"}}
	for _, key := range []string{e.goPub, e.goKey} {
		got := e.jsVerify(t, key, cli, "demo/room")
		checkJSClaims(t, got, want, true)
	}

	// The package, with the empty root and the cluster claim @moq/token ignores.
	key, err := token.LoadKey(e.goKey)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := key.Sign(token.Claims{Subscribe: []string{""}, Cluster: true})
	if err != nil {
		t.Fatal(err)
	}
	checkJSClaims(t, e.jsVerify(t, e.goPub, pkg, ""), token.Claims{Subscribe: []string{""}}, false)

	// @moq/token refuses what it must: another key, an expired token.
	if msg := e.jsRefuses(t, e.jsPub, cli, "demo/room"); !strings.Contains(msg, "signature") {
		t.Errorf("@moq/token refused a token of another key with %q, want a signature failure", msg)
	}
	expired, err := key.Sign(token.Claims{Publish: []string{""}, Expires: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if msg := e.jsRefuses(t, e.goPub, expired, ""); !strings.Contains(msg, `"exp"`) {
		t.Errorf("@moq/token refused an expired token with %q, want an exp failure", msg)
	}
}

// testJSSignsJSKey: @moq/token signs with its key; Go verifies, and signs
// with that key too.
func (e *tokenEnv) testJSSignsJSKey(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	claims := map[string]any{"root": "demo", "put": "bbb", "get": []string{"", "x/y"}, "exp": exp}
	jwt := e.jsSign(t, e.jsKey, claims)
	want := token.Claims{Root: "demo", Publish: []string{"bbb"}, Subscribe: []string{"", "x/y"}, Expires: time.Unix(exp, 0)}
	for _, v := range [][]string{{"--key", e.jsPub}, {"--key-dir", e.jsKeyDir}, {"--key", e.jsKey}} {
		checkGoClaims(t, e.verifyCLI(t, jwt, v...), want)
	}
	key, err := token.LoadKey(e.jsKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := key.Verify(jwt)
	if err != nil {
		t.Fatal(err)
	}
	checkGoClaims(t, got, want)

	// A tampered token is refused.
	parts := strings.Split(jwt, ".")
	forged, _ := json.Marshal(map[string]any{"root": "", "put": ""})
	tampered := parts[0] + "." + b64url(forged) + "." + parts[2]
	if code, _, stderr := e.moqCmd(tampered, "token", "verify", "--key", e.jsPub); code != 1 || !strings.Contains(stderr, "signature does not verify") {
		t.Errorf("moq token verify of a tampered token: exit %d, %q", code, stderr)
	}

	// The package signs with @moq/token's key; @moq/token verifies.
	ours, err := key.Sign(token.Claims{Root: "r", Publish: []string{"p"}})
	if err != nil {
		t.Fatal(err)
	}
	checkJSClaims(t, e.jsVerify(t, e.jsPub, ours, "r"), token.Claims{Root: "r", Publish: []string{"p"}}, false)
}

// testJSSignsGoKey: @moq/token signs with the key `moq token generate` wrote.
func (e *tokenEnv) testJSSignsGoKey(t *testing.T) {
	jwt := e.jsSign(t, e.goKey, map[string]any{"root": "", "get": "live"})
	want := token.Claims{Subscribe: []string{"live"}}
	for _, v := range [][]string{{"--key", e.goPub}, {"--key-dir", e.goKeyDir}} {
		checkGoClaims(t, e.verifyCLI(t, jwt, v...), want)
	}
}

// jsSign signs claims with @moq/token and the key file.
func (e *tokenEnv) jsSign(t *testing.T, keyFile string, claims map[string]any) string {
	t.Helper()
	res := e.js.mustCall(t, map[string]any{"op": "sign", "key": readFile(t, keyFile), "claims": claims})
	jwt, _ := res["token"].(string)
	return jwt
}

// jsVerify verifies with @moq/token and returns the claims.
func (e *tokenEnv) jsVerify(t *testing.T, keyFile, jwt, root string) map[string]any {
	t.Helper()
	res := e.js.mustCall(t, map[string]any{"op": "verify", "key": readFile(t, keyFile), "token": jwt, "root": root})
	claims, _ := res["claims"].(map[string]any)
	return claims
}

// jsRefuses verifies with @moq/token, which must fail, and returns why.
func (e *tokenEnv) jsRefuses(t *testing.T, keyFile, jwt, root string) string {
	t.Helper()
	res := e.js.call(t, map[string]any{"op": "verify", "key": readFile(t, keyFile), "token": jwt, "root": root})
	msg, failed := res["error"].(string)
	if !failed {
		t.Errorf("@moq/token accepted %s: %v", jwt, res["claims"])
	}
	return msg
}

// verifyCLI runs `moq token verify` and returns the claims it prints.
func (e *tokenEnv) verifyCLI(t *testing.T, jwt string, args ...string) token.Claims {
	t.Helper()
	out := e.runMoq(jwt, append([]string{"token", "verify"}, args...)...)
	var c token.Claims
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("moq token verify %v printed %q: %v", args, out, err)
	}
	return c
}

// moqCmd runs the CLI and returns its exit code and output.
func (e *tokenEnv) moqCmd(stdin string, args ...string) (code int, stdout, stderr string) {
	cmd := exec.CommandContext(e.ctx, e.moq, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if cmd.ProcessState == nil || (err != nil && cmd.ProcessState.ExitCode() <= 0) {
		e.t.Fatalf("moq %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// runMoq runs a CLI command that must succeed and returns its stdout.
func (e *tokenEnv) runMoq(stdin string, args ...string) string {
	e.t.Helper()
	code, stdout, stderr := e.moqCmd(stdin, args...)
	if code != 0 {
		e.t.Fatalf("moq %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// checkJSClaims compares the claims @moq/token verified with want; a string
// grant counts as a one-element list. withExp says an exp must be present
// and in the future.
func checkJSClaims(t *testing.T, got map[string]any, want token.Claims, withExp bool) {
	t.Helper()
	list := func(v any) []string {
		switch v := v.(type) {
		case string:
			return []string{v}
		case []any:
			out := make([]string, 0, len(v))
			for _, s := range v {
				out = append(out, fmt.Sprint(s))
			}
			return out
		}
		return nil
	}
	if got["root"] != want.Root || !slices.Equal(list(got["put"]), want.Publish) || !slices.Equal(list(got["get"]), want.Subscribe) {
		t.Errorf("@moq/token verified %v, want %+v", got, want)
	}
	exp, hasExp := got["exp"].(float64)
	if hasExp != withExp || (withExp && exp <= float64(time.Now().Unix())) {
		t.Errorf("@moq/token verified exp %v, want one in the future: %v", got["exp"], withExp)
	}
	if iat, _ := got["iat"].(float64); time.Since(time.Unix(int64(iat), 0)).Abs() > time.Minute {
		t.Errorf("@moq/token verified iat %v, want now", got["iat"])
	}
}

// checkGoClaims compares claims Go verified with want; iat must be now.
func checkGoClaims(t *testing.T, got, want token.Claims) {
	t.Helper()
	if got.Root != want.Root || !slices.Equal(got.Publish, want.Publish) || !slices.Equal(got.Subscribe, want.Subscribe) ||
		!got.Expires.Equal(want.Expires) || got.Cluster || !got.NotBefore.IsZero() {
		t.Errorf("Go verified %+v, want %+v", got, want)
	}
	if time.Since(got.IssuedAt).Abs() > time.Minute {
		t.Errorf("Go verified iat %v, want now", got.IssuedAt)
	}
}

func b64url(data []byte) string { return base64.RawURLEncoding.EncodeToString(data) }

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, []byte(readFile(t, from)), 0o600); err != nil {
		t.Fatal(err)
	}
}
