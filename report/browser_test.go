package report

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/must"
)

// chromium starts Debian's chromium headless on a page, with a fresh
// profile and home, no network chatter, bounded in time; the whole
// process group is killed when it is done.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium is not installed (make deps installs it)")
	}
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(home, "profile"), "--window-size=1280,900"}, args...)...)
	cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_CACHE_HOME=" + home, "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its helpers, if any outlived it
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// measured is what the probe script reads off the rendered page.
type measured struct {
	Header     string  `json:"header"`
	Height     float64 `json:"height"`
	Width      float64 `json:"width"`
	SVGRight   float64 `json:"svgRight"`
	VisibleRow int     `json:"visibleRows"`
}

// probe is appended to a copy of the page (the page itself runs no
// script): it writes what the browser laid out into the DOM that
// --dump-dom prints.
const probe = `<script>
window.addEventListener('load', () => {
  let right = 0, rows = 0;
  for (const s of document.querySelectorAll('svg')) {
    const r = s.getBoundingClientRect();
    if (r.width > 0) right = Math.max(right, r.right);
  }
  for (const g of document.querySelectorAll('g.rank')) if (g.checkVisibility()) rows++;
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({header: document.getElementById('header').innerText,
    height: document.body.getBoundingClientRect().height, width: window.innerWidth, svgRight: right, visibleRows: rows});
  document.body.appendChild(pre);
});
</script>`

func render(t *testing.T, j *Job) (page string, shot image.Image, m measured) {
	t.Helper()
	dir := t.TempDir()
	page = filepath.Join(dir, "report.html")
	if err := j.WriteHTML(page); err != nil {
		t.Fatal(err)
	}
	png1 := filepath.Join(dir, "shot.png")
	chromium(t, "--screenshot="+png1, "file://"+page)
	f, err := os.Open(png1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shot, err = png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	data := must.Read(t, page)
	probed := filepath.Join(dir, "probed.html")
	must.Do(t, os.WriteFile(probed, bytes.Replace(data, []byte("</body>"), []byte(probe+"</body>"), 1), 0o644))
	dom := chromium(t, "--virtual-time-budget=5000", "--dump-dom", "file://"+probed)
	mm := regexp.MustCompile(`(?s)<pre id="probe">(.*?)</pre>`).FindSubmatch(dom)
	if mm == nil {
		t.Fatalf("the probe wrote nothing; DOM:\n%.2000s", dom)
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(string(mm[1]))), &m); err != nil {
		t.Fatalf("probe: %v: %s", err, mm[1])
	}
	return page, shot, m
}

// pixels counts the screenshot's pixels that are not white, and those of
// the colour c (8-bit RGB, a small tolerance for antialiasing).
func pixels(img image.Image, c [3]int) (inked, coloured int) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r8, g8, b8 := int(r>>8), int(g>>8), int(bl>>8)
			if r8 < 245 || g8 < 245 || b8 < 245 {
				inked++
			}
			if abs(r8-c[0]) < 8 && abs(g8-c[1]) < 8 && abs(b8-c[2]) < 8 {
				coloured++
			}
		}
	}
	return inked, coloured
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// The page in a real browser: the screenshot is not blank and shows the
// failed step's red, and the header's facts are in the rendered text.
func TestPageInABrowser(t *testing.T) {
	j, err := Load("", filepath.Join("testdata", "failing-rank"))
	if err != nil {
		t.Fatal(err)
	}
	page, shot, m := render(t, j)
	inked, red := pixels(shot, [3]int{0xe0, 0x31, 0x31})
	total := shot.Bounds().Dx() * shot.Bounds().Dy()
	if inked < total/200 || red < 200 {
		t.Errorf("screenshot of %s: %d of %d pixels inked, %d red", page, inked, total, red)
	}
	for _, want := range []string{"slurmrun job " + j.ID, "Stage\t" + j.Ranks[0].Stage, "First failure\taggregated rank 0, step pytest: pytestCommand failed",
		"Exit code\t1", "Times are each rank's node's clock"} {
		if !strings.Contains(m.Header, want) {
			t.Errorf("the rendered header lacks %q:\n%s", want, m.Header)
		}
	}
	if m.SVGRight > m.Width {
		t.Errorf("the timeline is %.0f px wide in a %.0f px window", m.SVGRight, m.Width)
	}
	t.Logf("%s: %dx%d screenshot, %.1f%% inked, %d failed-red pixels; page %.0f px high", page,
		shot.Bounds().Dx(), shot.Bounds().Dy(), 100*float64(inked)/float64(total), red, m.Height)
}

// 256 ranks stay readable: the rows collapse per role, so the page is a
// few screens high and no wider than the window.
func TestLargePageInABrowser(t *testing.T) {
	j := bigJob()
	_, shot, m := render(t, j)
	inked, purple := pixels(shot, [3]int{0x9c, 0x36, 0xb5})
	if inked == 0 || purple < 50 {
		t.Errorf("screenshot: %d pixels inked, %d timed-out purple", inked, purple)
	}
	if m.VisibleRow != 4 || m.Height > 2*900 || m.SVGRight > m.Width {
		t.Errorf("256 ranks: %d rank rows visible, page %.0f px high, timeline ends at %.0f px of %.0f", m.VisibleRow, m.Height, m.SVGRight, m.Width)
	}
	if !strings.Contains(m.Header, "256 in 2 roles") {
		t.Errorf("header:\n%s", m.Header)
	}
	t.Logf("256 ranks: %d rows visible, page %.0f px high", m.VisibleRow, m.Height)
}
