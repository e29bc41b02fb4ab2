#!/usr/bin/env python3
"""Checks the project's Markdown: README.md at most --max-lines lines, every relative link and
image in README.md and docs/**/*.md pointing at an existing file inside the repository (and, for
`#anchor` links into Markdown, at an existing heading, slugged as GitHub does), and every page
under docs/ reachable from README.md by such links (nothing moved out of the README is lost).

    python3 tools/check_doc_links.py [--root DIR] [--max-lines 150]

Prints one line per problem, `file:line: problem`, and exits 1 if there is any; 0 otherwise.
Links inside code spans, fenced code blocks and indented code blocks are not links.
"""
import argparse
import glob
import os
import re
import sys
import urllib.parse

HEADING = re.compile(r'^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$')
FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,})')
# The target of [text](target) and ![alt](target): found by its "](" so that link text may run
# over several lines (a target may not).
INLINE = re.compile(r'\]\(\s*(<[^>]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)'
                    r'(?:\s+(?:"[^"]*"|\'[^\']*\'|\([^)]*\)))?\s*\)')
REFDEF = re.compile(r'^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)')
CODESPAN = re.compile(r'(`+)(?:(?!\1).)+?\1')
SCHEME = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*:')


def slug(text):
    """GitHub's heading anchor: the rendered text, lower case, punctuation dropped
    (letters, digits, '-', '_' and spaces kept), each space a '-'."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', text)  # links and images: their text
    text = re.sub(r'<[^>]+>', '', text)                       # inline HTML tags
    text = text.strip().lower()
    text = ''.join(c for c in text if c.isalnum() or c in '-_ ')
    return text.replace(' ', '-')


def scan(path):
    """(links, anchors): links as (line number, target) outside code; anchors of its headings."""
    links, anchors, seen = [], set(), {}
    fence, in_code, prev_blank = None, False, True
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    for n, line in enumerate(lines, 1):
        m = FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        blank = not line.strip()
        indented = line.startswith('    ') or line.startswith('\t')
        # an indented code block starts after a blank line and runs over indented and blank lines
        if in_code and (blank or indented):
            continue
        in_code = indented and not blank and prev_blank
        prev_blank = blank
        if in_code:
            continue
        h = HEADING.match(line)
        if h:
            s = slug(h.group(2))
            k = seen.get(s, 0)
            seen[s] = k + 1
            anchors.add(s if k == 0 else '%s-%d' % (s, k))
        text = CODESPAN.sub(lambda c: ' ' * len(c.group(0)), line)
        for m in INLINE.finditer(text):
            links.append((n, m.group(1)))
        m = REFDEF.match(text)
        if m:
            links.append((n, m.group(1)))
    return links, anchors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--root', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
    ap.add_argument('--max-lines', type=int, default=150)
    a = ap.parse_args()
    root = os.path.realpath(a.root)
    readme = os.path.join(root, 'README.md')
    pages = [readme] + sorted(glob.glob(os.path.join(root, 'docs', '**', '*.md'), recursive=True))
    problems = []
    rel = lambda p: os.path.relpath(p, root)

    if not os.path.isfile(readme):
        print('%s: missing' % rel(readme))
        return 1
    with open(readme, encoding='utf-8') as f:
        nlines = len(f.read().splitlines())
    if nlines > a.max_lines:
        problems.append('README.md:%d: README has %d lines, more than %d (move sections to docs/)'
                        % (nlines, nlines, a.max_lines))

    scanned = {}
    def info(p):
        if p not in scanned:
            scanned[p] = scan(p)
        return scanned[p]

    edges = {}
    for page in pages:
        links, own_anchors = info(page)
        edges[page] = set()
        for n, target in links:
            where = '%s:%d' % (rel(page), n)
            t = target[1:-1] if target.startswith('<') and target.endswith('>') else target
            if not t or SCHEME.match(t) or t.startswith('//'):
                continue
            path, _, anchor = t.partition('#')
            path = urllib.parse.unquote(path.split('?', 1)[0])
            anchor = urllib.parse.unquote(anchor)
            if path.startswith('/'):
                dest = os.path.realpath(os.path.join(root, path.lstrip('/')))
            elif path:
                dest = os.path.realpath(os.path.join(os.path.dirname(page), path))
            else:
                dest = page
            if dest != root and not dest.startswith(root + os.sep):
                problems.append("%s: link '%s' leaves the repository" % (where, target))
                continue
            if not os.path.exists(dest):
                problems.append("%s: link '%s': no such file %s" % (where, target, rel(dest)))
                continue
            if dest.endswith('.md') and os.path.isfile(dest):
                edges[page].add(dest)
            if not anchor:
                continue
            if dest.endswith('.md') and os.path.isfile(dest):
                if anchor not in info(dest)[1]:
                    problems.append("%s: link '%s': no heading with anchor #%s in %s"
                                    % (where, target, anchor, rel(dest)))
            elif not re.fullmatch(r'L\d+(-L\d+)?', anchor):
                problems.append("%s: link '%s': anchor #%s cannot point into %s"
                                % (where, target, anchor, rel(dest)))

    # Every docs page must be reachable from the README.
    reached, todo = {readme}, [readme]
    while todo:
        for d in edges.get(todo.pop(), ()):
            if d not in reached:
                reached.add(d)
                todo.append(d)
    for page in pages:
        if page not in reached:
            problems.append('%s:1: not reachable by links from README.md' % rel(page))

    for p in problems:
        print(p)
    if problems:
        return 1
    print('README.md: %d lines; %d pages, %d links checked'
          % (nlines, len(pages), sum(len(info(p)[0]) for p in pages)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
