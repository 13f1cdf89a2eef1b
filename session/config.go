package session

import (
	"fmt"
	"log/slog"

	"github.com/moqgo/moq"
)

// Config describes what a session publishes and consumes, and how Dial
// connects.
type Config struct {
	// Publish holds the broadcasts offered to the peer: it answers the peer's
	// announcement interest and serves its subscriptions. It is a view that
	// holds no resources, so it costs nothing while the peer asks for
	// nothing. Nil publishes nothing.
	Publish *moq.OriginConsumer
	// Consume receives the broadcasts the peer announces under Consume's
	// allowed prefixes; their tracks are subscribed on demand. Nil consumes
	// nothing.
	Consume *moq.OriginProducer
	// Versions restricts the versions offered or accepted, most preferred
	// first. Empty means DefaultVersions.
	Versions []Version
	// Logger receives session events. Nil uses slog.Default().
	Logger *slog.Logger
	// NodeID identifies this endpoint in announcement hop lists, as relays
	// do (0 means none): it is appended to the hops of every broadcast the
	// session announces, announcements whose hops already hold it are
	// ignored (they went round a loop), and from lite-04 on the session asks
	// the peer not to announce them at all (exclude_hop). Hop ids travel
	// only from lite-04 on; lite-03 carries their count, older versions
	// nothing.
	NodeID uint64
	// Limits bound what the peer can make the session hold: the time a new
	// stream has to send its request, and how many subscriptions, fetches
	// and announcements it may have at once. Zero fields take the defaults.
	Limits Limits
	// Cache bounds what the session caches of every track it receives from
	// the peer, by age and by bytes; zero fields take the defaults of
	// moq.CachePolicy.
	Cache moq.CachePolicy
	// Stats, when set, counts what the session does (subscriptions served,
	// groups and bytes in and out, groups dropped); sessions may share one.
	Stats *Stats

	// Dial options: see Dial.
	DialOptions
}

func (c *Config) versions() []Version {
	if len(c.Versions) == 0 {
		return DefaultVersions
	}
	return c.Versions
}

// check refuses versions this package has no engine for.
func (c *Config) check() error {
	for _, v := range c.Versions {
		if !v.supported() {
			return fmt.Errorf("%w: %s", moq.ErrVersion, v)
		}
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}
