// Package svgplot draws simple line and area charts as standalone SVG, so
// that the simulation's plots need no plotting library.
//
// A [Figure] is a column of [Panel] charts sharing an x axis; each panel
// holds [Series] drawn as lines or, for stacked areas, as filled bands.
// Axes get round tick values, and every panel a title and a legend.
package svgplot
