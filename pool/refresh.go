package pool

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ec2autoscale/ec2autoscale/awsctl"
	"github.com/ec2autoscale/ec2autoscale/manager"
)

// Day-two replacements. A server is due for replacement when
//   - the role's launch spec changed since it was launched (TagSpec, a digest
//     written at launch, differs from the spec's digest now) or its type was
//     removed from the pool: drift;
//   - the host asked for a refresh (TagRefresh, written by the pass that
//     follows Refresh on every server launched before it);
//   - it is older than Config.MaxLifetime;
//   - EC2 scheduled an event for it (a retirement, a stop, a reboot):
//     replaced before NotBefore, without waiting for the budget.
//
// A due server that works for a manager is replaced make-before-break, on
// the spot swap's machinery: a replacement is launched with TagReplaces,
// granted to the same manager once provisioned, and the old server then
// retires (winds down and is terminated, never restored). A due server no
// manager holds retires at once; the pass launches spare capacity anew if
// Min needs it. Every voluntary replacement, the spot swap included, draws
// from the pool's Disruption budget; failures (impaired status checks,
// unhealthy readings, interruptions) do not wait for it.
//
// Everything a decision reads is in tags, the launch time or EC2's answer,
// so a restarted scaler carries a roll on where it was.

// Defaults of the day-two settings.
const (
	// DefaultImpairedGrace is how long an EC2 status check may stay
	// impaired before the server is replaced. EC2's checks run every
	// minute ("Status checks for Amazon EC2 instances"): five readings.
	DefaultImpairedGrace = 5 * time.Minute
	// DefaultDisruptionPercent is the budget when Disruption sets neither
	// limit: a tenth of the pool's servers, at least one.
	DefaultDisruptionPercent = 10
)

// Disruption is a pool's budget for voluntary replacements: how many
// servers may be out of service for replacement at once (a replacement on
// its way, or a replaced server leaving), and when.
type Disruption struct {
	// MaxServers caps the servers being replaced at once; 0 for no such
	// cap.
	MaxServers int
	// MaxPercent caps them as a percentage of the pool's servers, rounded
	// down but at least 1; 0 for no such cap. With neither set, the cap is
	// DefaultDisruptionPercent. With both, the smaller applies.
	MaxPercent int
	// Windows, if any, are the only times voluntary replacements start
	// (those under way finish outside them). Empty means any time.
	Windows []Window
}

// Window is a recurring period, in UTC: from From to To after midnight, on
// Days (every day if empty). A To before From runs over midnight.
type Window struct {
	Days     []time.Weekday
	From, To time.Duration
}

func (w Window) contains(t time.Time) bool {
	t = t.UTC()
	day := t.Weekday()
	since := t.Sub(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC))
	on := func(d time.Weekday) bool { return len(w.Days) == 0 || slices.Contains(w.Days, d) }
	if w.From <= w.To {
		return on(day) && since >= w.From && since < w.To
	}
	// Over midnight: the evening part belongs to today, the morning part
	// to the day before.
	return on(day) && since >= w.From || on((day+6)%7) && since < w.To
}

func (d Disruption) validate() error {
	if d.MaxServers < 0 || d.MaxPercent < 0 || d.MaxPercent > 100 {
		return fmt.Errorf("MaxServers must not be negative and MaxPercent must be in [0, 100], got %d and %d", d.MaxServers, d.MaxPercent)
	}
	for i, w := range d.Windows {
		if w.From < 0 || w.To < 0 || w.From >= 24*time.Hour || w.To > 24*time.Hour || w.From == w.To {
			return fmt.Errorf("window %d: From and To must be distinct offsets within a day, got %v and %v", i, w.From, w.To)
		}
	}
	return nil
}

// budget is how many servers may be under replacement at once in a pool of
// n servers.
func (d Disruption) budget(n int) int {
	pct := d.MaxPercent
	if pct == 0 && d.MaxServers == 0 {
		pct = DefaultDisruptionPercent
	}
	b := -1
	if pct > 0 {
		b = max(1, n*pct/100)
	}
	if d.MaxServers > 0 && (b < 0 || d.MaxServers < b) {
		b = d.MaxServers
	}
	return b
}

func (d Disruption) open(now time.Time) bool {
	if len(d.Windows) == 0 {
		return true
	}
	return slices.ContainsFunc(d.Windows, func(w Window) bool { return w.contains(now) })
}

// specDigest is the digest of a launch spec written in TagSpec. The spec is
// encoded as JSON (struct fields in order, map keys sorted), so equal specs
// give equal digests.
func specDigest(spec awsctl.LaunchSpec) string {
	b, err := json.Marshal(spec)
	if err != nil {
		return "" // a spec that cannot be encoded is never called drifted
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// readDayTwoTags reads the tags only day-two decisions need, once per
// server: TagSpec never changes after launch, and TagRefresh is written by
// this pool (which records it in the memo as it plans it).
func readDayTwoTags(s *server) {
	if s.m.dayTwoRead {
		return
	}
	s.m.dayTwoRead = true
	s.m.spec = s.inst.Tags[TagSpec]
	s.m.refresh = s.inst.Tags[TagRefresh]
}

// dueReason says why s is due for replacement ("" if it is not), and
// whether the replacement is urgent: EC2 will act on the server at a set
// time, so it does not wait for the budget.
func (p *Pool) dueReason(ps *pass, s *server) (string, bool) {
	if h, ok := healthOf(ps, s); ok {
		for _, e := range h.Events {
			return fmt.Sprintf("EC2 scheduled %s not before %s", e.Code, e.NotBefore.UTC().Format(time.RFC3339)), true
		}
	}
	if !s.m.typeKnown {
		return fmt.Sprintf("type %s is no longer in the pool", s.inst.Type), false
	}
	readDayTwoTags(s)
	if s.m.spec != "" && s.m.spec != ps.spec {
		return "launched from an earlier launch spec", false
	}
	if s.m.refresh != "" {
		return "refresh requested at " + s.m.refresh, false
	}
	if p.cfg.MaxLifetime > 0 && ps.now.Sub(s.inst.LaunchTime) >= p.cfg.MaxLifetime {
		return fmt.Sprintf("older than MaxLifetime %v", p.cfg.MaxLifetime), false
	}
	return "", false
}

// replaceable: the states a due server is replaced from. Servers leaving
// already, interrupted or stopped have their own way out.
func replaceable(s *server) bool {
	switch s.state {
	case provisioning, free, granted:
		return s.replaces == nil && s.replacedBy == nil && !s.decided
	}
	return false // a booting server is looked at once it runs
}

// disrupting counts the servers under voluntary replacement: replacements
// on their way, and replaced servers still leaving.
func disrupting(ps *pass) int {
	n := 0
	for _, s := range ps.servers {
		if s.replaces != nil && s.state != granted || s.state == retiring && s.tags.retire == RetireReplaced {
			n++
		}
	}
	return n
}

// budgetLeft is how many more voluntary replacements may start this pass.
func (p *Pool) budgetLeft(ps *pass) int {
	if ps.budget == nil {
		left := 0
		if p.cfg.Disruption.open(ps.now) {
			b := p.cfg.Disruption.budget(len(ps.servers))
			left = max(0, b-disrupting(ps))
		}
		ps.budget = &left
	}
	return *ps.budget
}

func (ps *pass) spendBudget() {
	if ps.budget != nil && *ps.budget > 0 {
		*ps.budget--
	}
}

// markRefresh tags, while a refresh request is pending, every server
// launched before it; the request ends once none is left untagged.
func (p *Pool) markRefresh(ps *pass) {
	at := p.refreshAt.Load()
	if at == 0 {
		return
	}
	req := time.Unix(0, at)
	value := formatTime(req)
	for _, s := range ps.servers {
		switch s.state {
		case launching, booting, provisioning, free, granted:
		default:
			continue
		}
		readDayTwoTags(s)
		if s.m.refresh != "" || !s.inst.LaunchTime.Before(req) || s.replaces != nil {
			continue
		}
		s.m.refresh = value
		ps.pl.change(s, map[string]string{TagRefresh: value}, nil, 0)
	}
	p.refreshAt.CompareAndSwap(at, 0)
}

// replaceImpaired retires servers whose EC2 status checks have been
// impaired for ImpairedGrace: a failure, so it does not wait for the
// budget; the pass grants or launches in their place.
func (p *Pool) replaceImpaired(ps *pass) {
	if len(ps.health) == 0 {
		return
	}
	for _, s := range ps.servers {
		h, ok := ps.health[s.inst.ID]
		if !ok || s.decided || (h.System != awsctl.CheckImpaired && h.Instance != awsctl.CheckImpaired) {
			continue
		}
		switch s.state {
		case provisioning, free, granted:
		default:
			continue
		}
		since := h.ImpairedSince
		if since.IsZero() {
			if s.m.impairedSeen.IsZero() {
				s.m.impairedSeen = ps.now
			}
			since = s.m.impairedSeen
		}
		if ps.now.Sub(since) < p.cfg.ImpairedGrace {
			continue
		}
		w := p.wantOf(ps, s.mgr)
		if s.state != granted {
			w = nil
		}
		p.event(ps.pl, Event{Kind: EventRevoke, Instance: s.inst.ID, Manager: s.mgr,
			Reason: fmt.Sprintf("EC2 status checks impaired since %s (system %s, instance %s); replaced",
				since.UTC().Format(time.RFC3339), h.System, h.Instance)})
		p.retire(ps, s, RetireUnhealthy, w, "EC2 status checks impaired")
	}
}

// replaceDue starts the replacement of due servers, urgent ones first, then
// idle ones, then the oldest, within the budget and Max.
func (p *Pool) replaceDue(ps *pass) {
	if p.draining || ps.now.Before(p.holdUntil) || ps.now.Before(p.replaceHoldUntil) {
		return
	}
	type cand struct {
		s      *server
		why    string
		urgent bool
	}
	var cands []cand
	for _, s := range ps.servers {
		if !replaceable(s) {
			continue
		}
		if why, urgent := p.dueReason(ps, s); why != "" {
			cands = append(cands, cand{s, why, urgent})
		}
	}
	ps.due = 0
	if len(cands) == 0 {
		return
	}
	idle := map[string]bool{}
	for _, w := range ps.wants {
		for id := range w.idle {
			idle[id] = true
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		return cmp.Or(-cmpBool(a.urgent, b.urgent), -cmpBool(idle[a.s.inst.ID], idle[b.s.inst.ID]), oldestFirst(a.s, b.s))
	})
	for _, c := range cands {
		s := c.s
		if !c.urgent && p.budgetLeft(ps) == 0 {
			ps.due += s.weight
			continue
		}
		w := p.wantOf(ps, s.mgr)
		if s.state != granted || w == nil || p.spareFor(ps, w, s) {
			// Not needed by anyone (its manager keeps its target, zone
			// minimum and on-demand work without it): it leaves now, and
			// the pass launches spare capacity anew if Min needs it.
			if s.state != granted {
				w = nil
			} else if s.inst.Market == awsctl.MarketOnDemand && w.odKeep > 0 {
				w.heldOD -= s.weight
			}
			p.event(ps.pl, Event{Kind: EventReplace, Instance: s.inst.ID, Manager: s.mgr, Reason: c.why + "; not needed; retired"})
			p.retire(ps, s, RetireReplaced, w, c.why)
			if !c.urgent {
				ps.spendBudget()
			}
			continue
		}
		offers := p.replacementOffers(ps, s)
		if len(offers) == 0 || ps.l.live+s.weight > p.cfg.Max {
			ps.due += s.weight
			if !s.m.dueSaid {
				s.m.dueSaid = true
				why := "no offering of its weight can be launched"
				if len(offers) > 0 {
					why = fmt.Sprintf("no room under Max %d for a replacement", p.cfg.Max)
				}
				p.event(ps.pl, Event{Kind: EventReplaceSkipped, Instance: s.inst.ID, Manager: s.mgr, Reason: c.why + "; waiting: " + why})
			}
			continue
		}
		s.m.dueSaid = false
		p.addLaunch(ps, s.inst.Market, s.weight, offers, s.weight, map[string]string{TagReplaces: s.inst.ID},
			fmt.Sprintf("replaces %s: %s", s.inst.ID, c.why))
		p.event(ps.pl, Event{Kind: EventReplace, Instance: s.inst.ID, Manager: s.mgr, Market: s.inst.Market,
			Reason: c.why, Inputs: []slog.Attr{slog.Bool("urgent", c.urgent)}})
		s.decided = true
		if !c.urgent {
			ps.spendBudget()
		}
	}
}

// spareFor reports whether w, which holds s, needs it for none of what
// the pool keeps for it: its target, its zone minimum in s's zone, and the
// on-demand capacity kept for its work (see keepWorkOD). A server it needs
// is replaced make-before-break rather than retired and launched anew.
func (p *Pool) spareFor(ps *pass, w *want, s *server) bool {
	if ps.held(w)-s.weight < w.target {
		return false
	}
	if m := w.req.ZoneMinimums[s.inst.Zone]; m > 0 && ps.l.zoneHeld[mgrZone{w.index, s.inst.Zone}]-s.weight < min(m, w.target) {
		return false
	}
	return s.inst.Market != awsctl.MarketOnDemand || w.odKeep == 0 || w.heldOD-s.weight >= w.odKeep
}

// replacementOffers are the offerings a replacement of s may use: its
// market and weight, in s's zone when any is offered there (so a roll keeps
// the pool's spread and its managers' zone minimums), cheapest first when
// prices are known.
func (p *Pool) replacementOffers(ps *pass, s *server) []awsctl.Offering {
	var offers []awsctl.Offering
	if p.cfg.Prices != nil {
		spot := s.inst.Market == awsctl.MarketSpot
		for _, c := range p.rank(ps, spot, !spot) {
			if !c.Rejected && c.Market == s.inst.Market && c.Offering.Weight == s.weight && !slices.Contains(offers, c.Offering) {
				offers = append(offers, c.Offering)
			}
		}
	} else {
		for _, o := range p.offerings(s.inst.Zone, false) {
			if o.Weight == s.weight {
				offers = append(offers, o)
			}
		}
		offers = p.available(ps, s.inst.Market, offers)
	}
	if local := slices.DeleteFunc(slices.Clone(offers), func(o awsctl.Offering) bool { return o.Zone != s.inst.Zone }); len(local) > 0 {
		return local
	}
	return offers
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// retireReplaced ends a swap: the replaced server retires when it was due
// (it must not be restored to work again), and winds down otherwise (a
// spot swap: it may be restored if demand returns).
func (p *Pool) endSwap(ps *pass, x *server, w *want, deadline time.Time, reason string) {
	if why, _ := p.dueReason(ps, x); why != "" {
		p.windDown(ps, x, w, deadline, reason+" ("+why+")", manager.WindDown, map[string]string{TagRetire: RetireReplaced})
		x.tags.retire = RetireReplaced
		return
	}
	p.windDown(ps, x, w, deadline, reason, manager.WindDown, nil)
}
