package bench

import (
	"fmt"
	"strings"
	"time"
)

// String formats a live report as one line.
func (r Report) String() string {
	return fmt.Sprintf("%7.1fs  conns %d/%d  subs %d  send %s Mbps %s f/s  recv %s Mbps %s f/s  groups %d lost %d  latency %s",
		r.Elapsed, r.ConnectionsUp, r.Connections, r.Subscriptions,
		num(r.SendMbps), num(r.SendFPS), num(r.RecvMbps), num(r.RecvFPS),
		r.GroupsReceived, r.GroupsLost, r.latency())
}

// latency formats the latency quantiles, or a dash without samples.
func (r Report) latency() string {
	if r.Latencies == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s p99 %s max %s", ms(r.LatencyP50), ms(r.LatencyP99), ms(r.LatencyMax))
}

// Summary formats the final report on a few lines.
func (r Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "summary over %.1fs (after the startup window, until publishing stopped at %.1fs)\n", r.Interval, r.Elapsed)
	fmt.Fprintf(&b, "  connections  %d/%d up, %d failed; %d subscriptions up, %d failed\n",
		r.ConnectionsUp, r.Connections, r.ConnectionErrors, r.Subscriptions, r.SubscribeErrors)
	fmt.Fprintf(&b, "  send         %s Mbps  %s frames/s  %d groups\n", num(r.SendMbps), num(r.SendFPS), r.GroupsSent)
	fmt.Fprintf(&b, "  receive      %s Mbps  %s frames/s  %d groups, %d lost (%.3f%% delivered)",
		num(r.RecvMbps), num(r.RecvFPS), r.GroupsReceived, r.GroupsLost, 100*r.Delivered())
	if r.BadGroups > 0 {
		fmt.Fprintf(&b, ", %d without a valid header", r.BadGroups)
	}
	fmt.Fprintf(&b, "\n  latency      %s  (%d groups)\n", r.latency(), r.Latencies)
	return b.String()
}

// num formats a rate with three significant digits or more.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

// ms formats milliseconds as a duration.
func ms(v float64) string {
	d := time.Duration(v * float64(time.Millisecond))
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
