package token_test

import (
	"fmt"
	"log"
	"time"

	"github.com/moqgo/moq/token"
)

// A signer holds the private key; the relay verifies with the public half
// and scopes the claims to the path the client connected to.
func Example() {
	key, err := token.GenerateKey(token.EdDSA, "2026-01")
	if err != nil {
		log.Fatal(err)
	}
	jwt, err := key.Sign(token.Claims{
		Root:      "rooms/123",
		Publish:   []string{"alice"},
		Subscribe: []string{""},
		Expires:   time.Now().Add(time.Hour),
	})
	if err != nil {
		log.Fatal(err)
	}

	relayKey, err := key.Public()
	if err != nil {
		log.Fatal(err)
	}
	claims, err := relayKey.Verify(jwt)
	if err != nil {
		log.Fatal(err)
	}
	scope, err := claims.Scope("/rooms/123/alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("root %q, publish %q, subscribe %q\n", scope.Root, scope.Publish, scope.Subscribe)
	fmt.Println(scope.CanPublish("cam"), scope.CanSubscribe("cam"))
	// Output:
	// root "rooms/123/alice", publish [""], subscribe [""]
	// true true
}
