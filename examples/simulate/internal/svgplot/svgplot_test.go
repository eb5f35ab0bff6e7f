package svgplot

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteSVGIsWellFormedWithTitlesLegendsAndCurves(t *testing.T) {
	fig := Figure{
		Title:  "a <title> & more",
		XLabel: "days",
		Panels: []Panel{
			{Title: "capacity", YLabel: "units", Series: []Series{
				{Name: "spot", Color: "orange", X: []float64{0, 1, 2}, Y: []float64{1, 3, 2}, Fill: true},
				{Name: "total", Color: "blue", X: []float64{0, 1, 2}, Y: []float64{2, 4, 3}, Base: []float64{1, 3, 2}, Fill: true},
				{Name: "demand", Color: "black", X: []float64{0, 1, 2}, Y: []float64{2, 5, 3}},
			}},
			{Title: "cost", YLabel: "dollars", Series: []Series{{Name: "bound", Color: "green", X: []float64{0, 2}, Y: []float64{0, 10}, Dash: true}}},
		},
	}
	var buf bytes.Buffer
	require.NoError(t, fig.WriteSVG(&buf))
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	var texts []string
	paths := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "not well-formed XML")
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Local == "path" {
				paths++
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(el)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	assert.Equal(t, 4, paths, "one path per series")
	for _, want := range []string{"a <title> & more", "capacity", "cost", "spot", "demand", "bound", "days", "units", "dollars"} {
		assert.Contains(t, texts, want)
	}
}

func TestWriteSVGRejectsMismatchedSeries(t *testing.T) {
	fig := Figure{Panels: []Panel{{Series: []Series{{Name: "x", X: []float64{0, 1}, Y: []float64{1}}}}}}
	assert.ErrorContains(t, fig.WriteSVG(io.Discard), `series "x"`)
	assert.Error(t, (&Figure{}).WriteSVG(io.Discard))
}

func TestTicksAreRoundAndCoverTheRange(t *testing.T) {
	assert.Equal(t, []float64{0, 5, 10, 15, 20, 25, 30}, ticks(0, 30, 10))
	got := ticks(0, 734, 5)
	assert.Equal(t, 0.0, got[0])
	assert.GreaterOrEqual(t, got[len(got)-1], 734.0)
	for i := 1; i < len(got); i++ {
		assert.InDelta(t, 200, got[i]-got[i-1], 1e-9)
	}
}
