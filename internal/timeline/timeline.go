// Package timeline draws a run's record as a terminal chart: one bar per
// step and, under it, one per change it made (an ENI's create, attach and
// link-up are changes of the enis and links steps), with the critical path
// marked, so "why did this node take 40 s" is answered at a glance.
package timeline

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/state"
)

// Options shape the chart.
type Options struct {
	// Width is the bar area in columns; 0 means 60.
	Width int
	// Changes draws each step's changes under it.
	Changes bool
}

const labelWidth = 34

// CriticalPath is the chain of steps that decided the run's length: from
// the step that finished last, back through the predecessor each step
// waited for longest (the one of its After that finished last). Steps run
// by older builds record no After; then the predecessor is the step that
// finished last before it started.
func CriticalPath(steps []engine.Result) []string {
	if len(steps) == 0 {
		return nil
	}
	byName := map[string]engine.Result{}
	for _, s := range steps {
		byName[s.Name] = s
	}
	end := func(s engine.Result) time.Time { return s.Started.Add(s.Duration) }
	last := steps[0]
	for _, s := range steps[1:] {
		if end(s).After(end(last)) {
			last = s
		}
	}
	path := []string{last.Name}
	seen := map[string]bool{last.Name: true}
	for cur := last; ; {
		var prev *engine.Result
		candidates := cur.After
		if len(candidates) == 0 {
			for _, s := range steps {
				if !end(s).After(cur.Started) && s.Name != cur.Name {
					candidates = append(candidates, s.Name)
				}
			}
		}
		for _, name := range candidates {
			s, ok := byName[name]
			if !ok || seen[name] {
				continue
			}
			if prev == nil || end(s).After(end(*prev)) {
				p := s
				prev = &p
			}
		}
		if prev == nil {
			break
		}
		seen[prev.Name] = true
		path = append(path, prev.Name)
		cur = *prev
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path
}

// Write draws f's steps on one time axis from the run's start.
func Write(w io.Writer, f *state.File, opts Options) error {
	width := opts.Width
	if width <= 0 {
		width = 60
	}
	if len(f.Steps) == 0 {
		_, err := fmt.Fprintf(w, "last %s: %s, no steps recorded\n", f.Command, f.Result)
		return err
	}
	steps := append([]engine.Result(nil), f.Steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].Started.Before(steps[j].Started) })
	origin := f.Started
	if origin.IsZero() || steps[0].Started.Before(origin) {
		origin = steps[0].Started
	}
	total := f.Duration
	for _, s := range steps {
		if d := s.Started.Add(s.Duration).Sub(origin); d > total {
			total = d
		}
	}
	if total <= 0 {
		total = time.Millisecond
	}
	critical := map[string]bool{}
	path := CriticalPath(steps)
	for _, name := range path {
		critical[name] = true
	}
	col := func(t time.Time) int {
		c := int(float64(t.Sub(origin)) / float64(total) * float64(width))
		return min(max(c, 0), width)
	}
	bar := func(start time.Time, d time.Duration, fill rune) string {
		a, b := col(start), col(start.Add(d))
		if b <= a {
			b = a + 1 // a step too short to see still gets a mark
		}
		b = min(b, width+1)
		return strings.Repeat(" ", a) + strings.Repeat(string(fill), b-a) + strings.Repeat(" ", max(width+1-b, 0))
	}
	fmt.Fprintf(w, "last %s: %s in %s (from %s); * critical path: %s\n", f.Command, f.Result, total.Round(time.Millisecond), origin.Format(time.RFC3339), strings.Join(path, " → "))
	fmt.Fprintf(w, "%-*s %s\n", labelWidth, "", axis(width, total))
	for _, s := range steps {
		mark, fill := " ", '░'
		if critical[s.Name] {
			mark, fill = "*", '█'
		}
		if s.Outcome == engine.Failed {
			fill = 'X'
		}
		fmt.Fprintf(w, "%s %-*s %s %s %s\n", mark, labelWidth-2, clip(s.Name, labelWidth-2), bar(s.Started, s.Duration, fill), s.Duration.Round(time.Millisecond), outcome(s.Outcome))
		if !opts.Changes {
			continue
		}
		for _, c := range s.Changes {
			if c.Started.IsZero() {
				continue // recorded by a build that kept no change times
			}
			fmt.Fprintf(w, "    %-*s %s %s\n", labelWidth-4, clip(c.What, labelWidth-4), bar(c.Started, c.Duration, '▒'), c.Duration.Round(time.Millisecond))
		}
	}
	enis := ENIs(f)
	if len(enis) == 0 {
		return nil
	}
	crit := enis[CriticalENI(enis)]
	longest := crit.Spans[0]
	for _, sp := range crit.Spans[1:] {
		if sp.Duration() > longest.Duration() {
			longest = sp
		}
	}
	fmt.Fprintf(w, "per ENI: %s; * critical: %s (longest stage: %s, %s)\n", strings.Join(eni.StageNames(), " → "), crit.Interface, longest.Stage, longest.Duration().Round(time.Millisecond))
	for _, e := range enis {
		mark, fill := " ", '░'
		if e.Interface == crit.Interface {
			mark, fill = "*", '█'
		}
		first, last := e.Spans[0], e.Spans[len(e.Spans)-1]
		fmt.Fprintf(w, "%s %-*s %s %s\n", mark, labelWidth-2, clip(e.Interface+" "+e.ENIID, labelWidth-2), bar(first.Start, last.End.Sub(first.Start), fill), last.End.Sub(first.Start).Round(time.Millisecond))
		for _, sp := range e.Spans {
			fmt.Fprintf(w, "    %-*s %s %s\n", labelWidth-4, sp.Stage, bar(sp.Start, sp.Duration(), fill), sp.Duration().Round(time.Millisecond))
		}
	}
	return nil
}

// ENI is one ENI's stages in the run.
type ENI struct {
	Interface, ENIID string
	Spans            []eni.Span
}

// ENIs are the run's ENIs that have stages, by interface name.
func ENIs(f *state.File) []ENI {
	var out []ENI
	for name, in := range f.Interfaces {
		if spans := in.ENISpans(f.Started); len(spans) > 0 {
			out = append(out, ENI{Interface: name, ENIID: in.ENI.ENIID, Spans: spans})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Interface < out[j].Interface })
	return out
}

// CriticalENI is the index of the ENI the enis step waited for longest:
// the one whose stages up to attached ended last. Its NIC-up end says
// nothing: the links step readies every NIC only once all are attached, so
// those ends fall together.
func CriticalENI(enis []ENI) int {
	end := func(e ENI) time.Time {
		var t time.Time
		for _, sp := range e.Spans {
			if sp.Stage != eni.StageNICUp && sp.End.After(t) {
				t = sp.End
			}
		}
		return t
	}
	best := 0
	for i := range enis {
		if end(enis[i]).After(end(enis[best])) {
			best = i
		}
	}
	return best
}

func outcome(o engine.Outcome) string {
	if o == engine.Succeeded {
		return ""
	}
	return string(o)
}

// axis is a ruler with the start, middle and end times.
func axis(width int, total time.Duration) string {
	r := []rune(strings.Repeat("─", width+1))
	r[0], r[width/2], r[width] = '├', '┼', '┤'
	mid := (total / 2).Round(time.Millisecond).String()
	end := total.Round(time.Millisecond).String()
	label := fmt.Sprintf("0%*s%*s", width/2, mid, width-width/2, end)
	return string(r) + "\n" + strings.Repeat(" ", labelWidth+1) + label
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
