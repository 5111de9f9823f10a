package windowsinstaller

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// PowerShell cannot be installed from the package registries this project builds from (Debian has no
// powershell package and the npm packages only wrap an installed pwsh), so the module is checked by
// this small scanner instead of PowerShell's parser. It understands what the module uses — line and
// block comments, single- and double-quoted strings with their escapes and $( ) subexpressions,
// here-strings, backtick escapes, and (), {}, [] nesting — and reports the first problem with its line.

// psScript is a scanned script: its code with strings and comments blanked out (same length and line
// breaks, so offsets and line numbers still match) and its block comments.
type psScript struct {
	name     string
	src      string
	code     []byte
	comments []psComment
}

type psComment struct {
	start, end int // byte offsets of "<#" and just past "#>"
	text       string
}

func (s *psScript) line(off int) int { return strings.Count(s.src[:off], "\n") + 1 }

func (s *psScript) errorf(off int, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", s.name, s.line(off), fmt.Sprintf(format, args...))
}

var closer = map[byte]byte{'(': ')', '{': '}', '[': ']'}

// scanPS scans src and checks that every string, comment and bracket is closed.
func scanPS(name, src string) (*psScript, error) {
	s := &psScript{name: name, src: src, code: []byte(src)}
	end, err := s.scanCode(0, 0)
	if err != nil {
		return nil, err
	}
	if end != len(src) {
		return nil, s.errorf(end, "unexpected %q", src[end])
	}
	return s, nil
}

func (s *psScript) blank(from, to int) {
	for i := from; i < to; i++ {
		if s.code[i] != '\n' {
			s.code[i] = ' '
		}
	}
}

// scanCode scans code from i until the closing bracket that matches the one before i (want), or to the
// end when want is 0, and returns the offset of that closing bracket (or len).
func (s *psScript) scanCode(i int, want byte) (int, error) {
	src := s.src
	type open struct {
		c   byte
		off int
	}
	var stack []open
	for i < len(src) {
		c := src[i]
		switch {
		case c == '<' && strings.HasPrefix(src[i:], "<#"):
			j := strings.Index(src[i+2:], "#>")
			if j < 0 {
				return 0, s.errorf(i, "block comment <# is never closed with #>")
			}
			e := i + 2 + j + 2
			s.comments = append(s.comments, psComment{start: i, end: e, text: src[i+2 : e-2]})
			s.blank(i, e)
			i = e
		case c == '#':
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = len(src) - i
			}
			s.blank(i, i+j)
			i += j
		case c == '`':
			if i+1 >= len(src) {
				return 0, s.errorf(i, "backtick at the end of the file escapes nothing")
			}
			i += 2
		case c == '@' && (strings.HasPrefix(src[i:], "@\"") || strings.HasPrefix(src[i:], "@'")) && isHereStart(src, i):
			e, err := s.hereString(i)
			if err != nil {
				return 0, err
			}
			i = e
		case c == '\'':
			e, err := s.singleQuoted(i)
			if err != nil {
				return 0, err
			}
			i = e
		case c == '"':
			e, err := s.doubleQuoted(i)
			if err != nil {
				return 0, err
			}
			i = e
		case c == '(' || c == '{' || c == '[':
			stack = append(stack, open{c, i})
			i++
		case c == ')' || c == '}' || c == ']':
			if len(stack) == 0 {
				if want == c {
					return i, nil
				}
				return 0, s.errorf(i, "%q closes nothing", c)
			}
			top := stack[len(stack)-1]
			if closer[top.c] != c {
				return 0, s.errorf(i, "%q does not close %q opened on line %d", c, top.c, s.line(top.off))
			}
			stack = stack[:len(stack)-1]
			i++
		default:
			i++
		}
	}
	if len(stack) > 0 {
		top := stack[len(stack)-1]
		return 0, s.errorf(top.off, "%q is never closed", top.c)
	}
	if want != 0 {
		return 0, fmt.Errorf("%s: the file ends inside a $( ) subexpression", s.name)
	}
	return len(src), nil
}

// isHereStart: a here-string opener is @" or @' followed only by spaces up to the end of its line.
func isHereStart(src string, i int) bool {
	rest := src[i+2:]
	nl := strings.IndexByte(rest, '\n')
	if nl < 0 {
		return false
	}
	return strings.TrimSpace(rest[:nl]) == ""
}

func (s *psScript) hereString(i int) (int, error) {
	q := s.src[i+1]
	body := i + strings.IndexByte(s.src[i:], '\n') + 1
	closing := "\n" + string(q) + "@"
	j := strings.Index(s.src[body-1:], closing)
	if j < 0 {
		return 0, s.errorf(i, "here-string @%c is never closed by a line starting with %c@", q, q)
	}
	e := body - 1 + j + len(closing)
	s.blank(i, e)
	return e, nil
}

func (s *psScript) singleQuoted(i int) (int, error) {
	for j := i + 1; j < len(s.src); j++ {
		if s.src[j] == '\'' {
			if j+1 < len(s.src) && s.src[j+1] == '\'' { // '' is a quote inside the string
				j++
				continue
			}
			s.blank(i, j+1)
			return j + 1, nil
		}
	}
	return 0, s.errorf(i, "string ' is never closed")
}

func (s *psScript) doubleQuoted(i int) (int, error) {
	for j := i + 1; j < len(s.src); j++ {
		switch s.src[j] {
		case '`':
			j++
		case '"':
			if j+1 < len(s.src) && s.src[j+1] == '"' {
				j++
				continue
			}
			s.blank(i, j+1)
			return j + 1, nil
		case '$':
			if j+1 < len(s.src) && s.src[j+1] == '(' {
				e, err := s.scanCode(j+2, ')')
				if err != nil {
					return 0, err
				}
				j = e
			}
		}
	}
	return 0, s.errorf(i, "string \" is never closed")
}

// match returns the offset of the bracket closing the one at open in the blanked code.
func (s *psScript) match(open int) int {
	depth := 0
	for i := open; i < len(s.code); i++ {
		switch s.code[i] {
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// psFunction is a top-level function of a module.
type psFunction struct {
	Name   string
	Params []string
	Help   string // the comment-based help block, "" when there is none
	off    int
}

var functionRE = regexp.MustCompile(`(?im)^function\s+([A-Za-z][\w-]*)\s*\{`)
var paramRE = regexp.MustCompile(`(?i)\bparam\s*\(`)
var varRE = regexp.MustCompile(`\$(\w+)`)

// functions lists the top-level functions with their parameters and help.
func (s *psScript) functions() []psFunction {
	code := string(s.code)
	var out []psFunction
	for _, m := range functionRE.FindAllStringSubmatchIndex(code, -1) {
		f := psFunction{Name: code[m[2]:m[3]], off: m[0]}
		open := m[1] - 1
		close := s.match(open)
		body := code[open+1 : close]
		// Help: the first thing in the body, or right before the function keyword.
		for _, c := range s.comments {
			if c.start > open && c.end < close && strings.TrimSpace(code[open+1:c.start]) == "" {
				f.Help = c.text
			}
			if c.end <= m[0] && strings.TrimSpace(code[c.end:m[0]]) == "" {
				f.Help = c.text
			}
		}
		if pm := paramRE.FindStringIndex(body); pm != nil {
			po := open + 1 + pm[1] - 1
			f.Params = s.params(po, s.match(po))
		}
		out = append(out, f)
	}
	return out
}

// params returns the parameter names declared between the param block's parentheses: for each
// top-level comma-separated part, the first variable after its [attributes].
func (s *psScript) params(open, close int) []string {
	var names []string
	depth, start := 0, open+1
	flush := func(end int) {
		part := []byte(string(s.code[start:end]))
		// Drop bracketed attributes and type constraints.
		d := 0
		for i, c := range part {
			switch c {
			case '[', '(':
				d++
				part[i] = ' '
			case ']', ')':
				d--
				part[i] = ' '
			default:
				if d > 0 {
					part[i] = ' '
				}
			}
		}
		if m := varRE.FindSubmatch(part); m != nil {
			names = append(names, string(m[1]))
		}
	}
	for i := open + 1; i < close; i++ {
		switch s.code[i] {
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
		case ',':
			if depth == 0 {
				flush(i)
				start = i + 1
			}
		}
	}
	flush(close)
	return names
}

var (
	exportMemberRE = regexp.MustCompile(`(?im)^Export-ModuleMember\s+-Function\s+(.+)$`)
	psd1ListRE     = regexp.MustCompile(`(?s)FunctionsToExport\s*=\s*@\(([^)]*)\)`)
	psd1ValueRE    = func(key string) *regexp.Regexp { return regexp.MustCompile(`(?m)^\s*` + key + `\s*=\s*'([^']*)'`) }
	quotedRE       = regexp.MustCompile(`'([^']+)'`)
	guidRE         = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// CheckPSModule checks a module manifest and its root module: both scan cleanly; the manifest names the
// root module, a version and a GUID; the functions it exports are exactly those the module exports with
// Export-ModuleMember and defines; and each exported function has comment-based help with .SYNOPSIS,
// .DESCRIPTION, at least one .EXAMPLE and a .PARAMETER for each of its parameters (and none for a
// parameter it lacks). It returns every problem found.
func CheckPSModule(psd1Name, psd1, psm1Name, psm1 string) []error {
	var errs []error
	manifest, err := scanPS(psd1Name, psd1)
	if err != nil {
		return []error{err}
	}
	module, err := scanPS(psm1Name, psm1)
	if err != nil {
		return []error{err}
	}
	_ = manifest
	if m := psd1ValueRE("RootModule").FindStringSubmatch(psd1); m == nil || m[1] != baseName(psm1Name) {
		errs = append(errs, fmt.Errorf("%s: RootModule must be '%s'", psd1Name, baseName(psm1Name)))
	}
	if m := psd1ValueRE("ModuleVersion").FindStringSubmatch(psd1); m == nil || !regexp.MustCompile(`^\d+\.\d+(\.\d+){0,2}$`).MatchString(m[1]) {
		errs = append(errs, fmt.Errorf("%s: ModuleVersion must be a version such as '1.0.0'", psd1Name))
	}
	if m := psd1ValueRE("GUID").FindStringSubmatch(psd1); m == nil || !guidRE.MatchString(m[1]) {
		errs = append(errs, fmt.Errorf("%s: GUID must be a GUID", psd1Name))
	}
	var manifestList []string
	if m := psd1ListRE.FindStringSubmatch(psd1); m != nil {
		for _, q := range quotedRE.FindAllStringSubmatch(m[1], -1) {
			manifestList = append(manifestList, q[1])
		}
	} else {
		errs = append(errs, fmt.Errorf("%s: no FunctionsToExport = @(...) list", psd1Name))
	}
	var exported []string
	if m := exportMemberRE.FindStringSubmatch(string(module.code)); m != nil {
		for _, n := range strings.Split(m[1], ",") {
			exported = append(exported, strings.TrimSpace(n))
		}
	} else {
		errs = append(errs, fmt.Errorf("%s: no Export-ModuleMember -Function line", psm1Name))
	}
	sort.Strings(manifestList)
	sort.Strings(exported)
	if !slices.Equal(manifestList, exported) {
		errs = append(errs, fmt.Errorf("%s exports %v but %s exports %v", psd1Name, manifestList, psm1Name, exported))
	}
	defined := map[string]psFunction{}
	for _, f := range module.functions() {
		if _, dup := defined[f.Name]; dup {
			errs = append(errs, module.errorf(f.off, "function %s is defined twice", f.Name))
		}
		defined[f.Name] = f
	}
	for _, name := range exported {
		f, ok := defined[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: exports %s, which it does not define", psm1Name, name))
			continue
		}
		errs = append(errs, checkHelp(module, f)...)
	}
	return errs
}

var helpKeywordRE = regexp.MustCompile(`(?m)^\s*\.([A-Z]+)(?:[ \t]+(\S+))?\s*$`)

func checkHelp(s *psScript, f psFunction) []error {
	if f.Help == "" {
		return []error{s.errorf(f.off, "function %s has no comment-based help (<# .SYNOPSIS ... #> at the top of its body)", f.Name)}
	}
	var errs []error
	seen := map[string]int{}
	var helpParams []string
	for _, m := range helpKeywordRE.FindAllStringSubmatch(f.Help, -1) {
		seen[m[1]]++
		if m[1] == "PARAMETER" {
			helpParams = append(helpParams, m[2])
		}
	}
	for _, k := range []string{"SYNOPSIS", "DESCRIPTION", "EXAMPLE"} {
		if seen[k] == 0 {
			errs = append(errs, s.errorf(f.off, "function %s: its help has no .%s", f.Name, k))
		}
	}
	for _, p := range f.Params {
		if !containsFold(helpParams, p) {
			errs = append(errs, s.errorf(f.off, "function %s: parameter $%s has no .PARAMETER %s in the help", f.Name, p, p))
		}
	}
	for _, p := range helpParams {
		if !containsFold(f.Params, p) {
			errs = append(errs, s.errorf(f.off, "function %s: the help documents .PARAMETER %s, which it does not have", f.Name, p))
		}
	}
	return errs
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}
