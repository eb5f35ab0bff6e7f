package svgplot_test

import (
	"fmt"
	"strings"

	"github.com/ec2autoscale/ec2autoscale/examples/simulate/internal/svgplot"
)

func ExampleFigure_WriteSVG() {
	fig := svgplot.Figure{
		Title:  "Demand",
		XLabel: "hours",
		Panels: []svgplot.Panel{{
			Title:  "servers wanted",
			YLabel: "servers",
			Series: []svgplot.Series{{Name: "demand", Color: "#222", X: []float64{0, 1, 2, 3}, Y: []float64{4, 9, 7, 2}}},
		}},
	}
	var b strings.Builder
	if err := fig.WriteSVG(&b); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.HasPrefix(b.String(), "<svg"), strings.Count(b.String(), "<path"))
	// Output: true 1
}
