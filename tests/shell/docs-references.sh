#!/usr/bin/env bash
# Shows: no reference in the tree leads nowhere.
# - every "§N" / "§N.M" in a file that cites protocol.md (ranges "§2.3–2.4" too) names a heading
#   of docs/protocol.md;
# - citations follow the scheme stated at the top of docs/protocol.md: the repository path
#   "docs/protocol.md §N" outside Markdown, a relative link to docs/protocol.md (whose anchor, if
#   any, is the cited heading's) inside Markdown;
# - every relative link in a tracked .md file points at an existing file, and an anchor into a
#   Markdown file at one of its headings;
# - nothing points outside the repository at the notes the project was built from.
# No build, no root. DOCS_ROOT=DIR checks another tree (the test's own negative check uses it).
# timeout: 60
. "$(dirname "$0")/../lib/common.sh"
need_cmd perl

check_tree() {
    perl - "$1" <<'PERL'
use strict; use warnings; use utf8;
binmode STDOUT, ":encoding(UTF-8)";
use File::Spec; use Cwd qw(abs_path);
my $root = abs_path($ARGV[0]);
chdir $root or die "cannot enter $root\n";
my $proto = 'docs/protocol.md';
my @files;
if (-e '.git' && open(my $g, '-|', 'git', 'ls-files', '-z')) {
    local $/ = "\0"; while (my $f = <$g>) { chomp $f; push @files, $f if -f $f } close $g;
} else {
    open(my $g, '-|', 'find', '.', '-path', './target', '-prune', '-o', '-path', './.git',
         '-prune', '-o', '-type', 'f', '-print') or die;
    while (my $f = <$g>) { chomp $f; $f =~ s{^\./}{}; push @files, $f } close $g;
}
my $self = 'tests/shell/docs-references.sh';
my @err;

# GitHub's heading anchors: lower case, punctuation dropped, each space a '-'.
sub slug { my $s = lc shift; $s =~ s/`//g; $s =~ s/[^\p{L}\p{N} _-]//g; $s =~ s/ /-/g; $s }
my %anchors_of;
sub anchors {
    my ($f) = @_;
    return $anchors_of{$f} if $anchors_of{$f};
    my (%a, %num, $fence);
    if (open my $h, '<:encoding(UTF-8)', $f) {
        while (<$h>) {
            $fence = !$fence if /^\s*```/;
            next if $fence || !/^#{1,6}\s+(.*?)\s*#*\s*$/;
            my $t = $1; my $s = slug($t); my $n = 0;
            $n++ while $a{$n ? "$s-$n" : $s};
            $a{$n ? "$s-$n" : $s} = 1;
            $num{$1} = $n ? "$s-$n" : $s if $t =~ /^(\d+(?:\.\d+)?)\.?\s/;
        }
    }
    $anchors_of{$f} = [\%a, \%num];
}
-f $proto or do { print "missing $proto\n"; exit 1 };
my %section = %{ anchors($proto)->[1] };

sub norm {    # path of $target seen from the directory of $from, relative to the root
    my ($from, $target) = @_;
    my @d = split m{/}, $from; pop @d;
    for (split m{/}, $target) {
        next if $_ eq '.' || $_ eq '';
        if ($_ eq '..') { return undef unless @d; pop @d } else { push @d, $_ }
    }
    join '/', @d;
}

for my $f (@files) {
    next if $f eq $self || $f =~ m{^(fuzz/(seeds|corpus)|tests/data)/};
    open my $h, '<:raw', $f or next;
    my $raw = do { local $/; <$h> }; close $h;
    next if index($raw, "\0") >= 0 || !utf8::decode($raw);    # binary, or not UTF-8 text
    my @lines = split /^/, $raw;
    my $text = $raw;
    for my $bad ('/work/shared', '..' . '/shared', 'shared/transcripts', 'shared/protocol.md',
                 'shared/design.md', 'shared/seeds') {
        push @err, "$f: points outside the repository ($bad)" if index($text, $bad) >= 0;
    }
    my $md = $f =~ /\.md$/;
    my $cites = $text =~ /protocol\.md/;
    my $fence = 0;
    for my $i (0 .. $#lines) {
        my $l = $lines[$i]; my $at = "$f:" . ($i + 1);
        if ($md && $l =~ /^\s*```/) { $fence = !$fence; next }
        # § numbers: in any file citing protocol.md, and in protocol.md itself.
        if ($cites && !$fence) {
            while ($l =~ /§\s*(\d+(?:\.\d+)?)(?:\s*[–-]\s*(\d+(?:\.\d+)?))?/g) {
                for my $n (grep { defined } $1, $2) {
                    push @err, "$at: §$n is not a heading of $proto" unless $section{$n};
                }
            }
        }
        next if $f eq $proto;
        if (!$md) {
            while ($l =~ /(\S*)protocol\.md/g) {
                push @err, "$at: cite as \"docs/protocol.md §N\" (found \"$1protocol.md\")"
                    unless $1 =~ m{(^|[^\w./-])docs/$};
            }
            next;
        }
        next if $fence;
        (my $plain = $l) =~ s/`[^`]*`//g;
        # Relative links (inline code dropped): the file exists, the anchor is a heading.
        while ($plain =~ /\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g) {
            my ($label, $target) = ($1, $2);
            next if $target =~ m{^[a-z][a-z0-9+.-]*:}i;    # http:, mailto:, ...
            my ($path, $anchor) = split /#/, $target, 2;
            my $dest = $path eq '' ? $f : norm($f, $path);
            if (!defined $dest || !-e $dest) { push @err, "$at: link to missing $target"; next }
            if ($label =~ /protocol\.md/ && $dest ne $proto) {
                push @err, "$at: \"$label\" does not link to $proto"; next;
            }
            if (defined $anchor && $dest =~ /\.md$/ && -f $dest) {
                push @err, "$at: no heading for #$anchor in $dest"
                    unless anchors($dest)->[0]{$anchor};
            }
            if ($dest eq $proto && defined $anchor && $label =~ /§\s*(\d+(?:\.\d+)?)/
                && $section{$1} && $section{$1} ne $anchor) {
                push @err, "$at: \"$label\" links to #$anchor, §$1 is #$section{$1}";
            }
        }
        # A citation outside a link's text is a bare one.
        (my $rest = $plain) =~ s/\[(?:[^\[\]]|\[[^\]]*\])*\]\([^)]*\)//g;
        push @err, "$at: link the citation: [protocol.md §N](<relative path>/docs/protocol.md#anchor)"
            if $rest =~ /protocol\.md/;
    }
}
print "$_\n" for @err;
printf "%d files, %d sections, %d problems\n", scalar @files, scalar keys %section, scalar @err;
exit(@err ? 1 : 0);
PERL
}

if [ -n "${DOCS_ROOT:-}" ]; then check_tree "$DOCS_ROOT"; exit; fi

out=$(check_tree "$TOP") || { echo "$out"; fail "dangling or malformed references"; }
echo "$out" | tail -1
n=$(git -C "$TOP" grep -c 'protocol\.md' 2>/dev/null | awk -F: '{s += $2} END {print s + 0}')
note "$n lines cite docs/protocol.md"

# The check itself must fail: a copy of a few files with one dangling citation of each kind.
copy=$TESTDIR/tree
mkdir -p "$copy/docs" "$copy/src" "$copy/area"
cp "$TOP/docs/protocol.md" "$copy/docs/"
printf '//! Fine (docs/protocol.md §3.7, §2.3–2.4).\n' >"$copy/src/ok.rs"
printf 'See [protocol.md §3.7](../docs/protocol.md#37-pv_found-algorithm).\n' >"$copy/area/README.md"
printf "# Top\n\n## Map\n" >"$copy/README.md"
check_tree "$copy" >/dev/null || fail "a clean tree is reported as broken"
for bad in \
    'src/a.rs://! Dangling (docs/protocol.md §3.99).' \
    'src/b.rs://! Range end dangling (docs/protocol.md §2.3–2.99).' \
    'src/c.rs://! Bare path (protocol.md §3.7).' \
    'area/d.md:See [protocol.md §3.7](../docs/protocol.md#38-metadata-update-rules).' \
    'area/e.md:See [protocol.md §3.7](../docs/nowhere.md).' \
    'area/f.md:See protocol.md §3.7.' \
    'area/g.md:See [the notes](../README.md#no-such-heading).' \
    'src/h.rs://! From /work/shared/protocol.md.'; do
    file=${bad%%:*}
    printf '%s\n' "${bad#*:}" >"$copy/$file"
    out=$(check_tree "$copy") && fail "not caught: ${bad#*:}"
    echo "$out" | grep -q "^$file:" || fail "wrong report for $file: $out"
    rm "$copy/$file"
done
note "each kind of broken reference is caught"
