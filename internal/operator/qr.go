package operator

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strings"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

// qrQuiet is the quiet zone around a QR code, in modules, as ISO/IEC 18004
// asks.
const qrQuiet = 4

// qrMatrix encodes s as a QR code (error correction level M) and returns
// its modules, true for dark, without the quiet zone.
func qrMatrix(s string) ([][]bool, error) {
	code, err := qr.Encode(s, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("qr code: %w", err)
	}
	b := code.Bounds()
	m := make([][]bool, b.Dy())
	for y := range m {
		m[y] = make([]bool, b.Dx())
		for x := range m[y] {
			r, _, _, _ := code.At(b.Min.X+x, b.Min.Y+y).RGBA()
			m[y][x] = r < 0x8000
		}
	}
	return m, nil
}

// QRText draws s (a TOTP key URI) as a QR code for a terminal, two module
// rows per line with Unicode half blocks. Light modules and the quiet zone
// are drawn as blocks, dark modules as blanks, so the code reads dark on
// light in a terminal with light text on a dark background; invert swaps
// them for dark text on a light background. The result holds the seed:
// show it once, never log it.
func QRText(s string, invert bool) (string, error) {
	m, err := qrMatrix(s)
	if err != nil {
		return "", err
	}
	n := len(m) + 2*qrQuiet
	// drawn reports whether the module at (x, y), quiet zone included, is
	// drawn as a block.
	drawn := func(x, y int) bool {
		x, y = x-qrQuiet, y-qrQuiet
		dark := y >= 0 && y < len(m) && x >= 0 && x < len(m) && m[y][x]
		return dark == invert
	}
	var sb strings.Builder
	for y := 0; y < n; y += 2 {
		for x := range n {
			top, bottom := drawn(x, y), y+1 < n && drawn(x, y+1)
			switch {
			case top && bottom:
				sb.WriteRune('█')
			case top:
				sb.WriteRune('▀')
			case bottom:
				sb.WriteRune('▄')
			default:
				sb.WriteByte(' ')
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String(), nil
}

// QRPNG draws s (a TOTP key URI) as a PNG QR code of about size pixels
// square, quiet zone included, for the dashboard's enrollment page. Like
// the URI, it holds the seed: serve it once with Cache-Control: no-store.
func QRPNG(s string, size int) ([]byte, error) {
	code, err := qr.Encode(s, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("qr code: %w", err)
	}
	modules := code.Bounds().Dx() + 2*qrQuiet
	scale := max(size/modules, 1)
	inner, err := barcode.Scale(code, code.Bounds().Dx()*scale, code.Bounds().Dy()*scale)
	if err != nil {
		return nil, fmt.Errorf("qr code: %w", err)
	}
	img := newPadded(inner, qrQuiet*scale)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("qr code png: %w", err)
	}
	return buf.Bytes(), nil
}

// newPadded returns a grey image of in surrounded by pad white pixels.
func newPadded(in image.Image, pad int) *image.Gray {
	b := in.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dx()+2*pad, b.Dy()+2*pad))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(out, image.Rect(pad, pad, pad+b.Dx(), pad+b.Dy()), in, b.Min, draw.Src)
	return out
}
