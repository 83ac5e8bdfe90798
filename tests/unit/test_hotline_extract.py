"""What the verification crawl reads from a page: media and same-host pages, resolved,
deduplicated, bounded, and never a crash on bad markup."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from amparo.hotline.extract import absolute, extract_media, is_media_url, srcset_urls

PAGE = "https://site.example/gallery/index.html"


def test_every_kind_of_media_reference_is_found_in_page_order() -> None:
    html = """<html><head>
      <meta property="og:image" content="/og.jpg">
      <meta name="twitter:image" content="https://cdn.example/tw.png">
      <meta name="description" content="not-an-image.jpg">
    </head><body>
      <img src="a.png" srcset="a-2x.png 2x, a-3x.png 3x">
      <img data-src="lazy.webp" src="placeholder.gif">
      <picture><source srcset="p.webp 1x, p2.webp 2x" type="image/webp"><img src="p.jpg"></picture>
      <video src="clip.mp4" poster="poster.jpg"><source src="clip.webm"></video>
      <a href="full/size.JPEG?w=1">full size</a>
      <a href="next.html">next</a>
      <a href="https://elsewhere.example/page">elsewhere</a>
      <iframe src="/embed/frame.html"></iframe>
    </body></html>"""
    found = extract_media(html, PAGE, max_links=100)
    base = "https://site.example/gallery/"
    assert found.media == (
        "https://site.example/og.jpg",
        "https://cdn.example/tw.png",
        base + "a.png",
        base + "a-2x.png",
        base + "a-3x.png",
        base + "placeholder.gif",
        base + "lazy.webp",
        base + "p.webp",
        base + "p2.webp",
        base + "p.jpg",
        base + "clip.mp4",
        base + "poster.jpg",
        base + "clip.webm",
        base + "full/size.JPEG?w=1",
    )
    # Same-host pages only; a media link is a medium, never a page to follow.
    assert found.pages == (base + "next.html", "https://site.example/embed/frame.html")
    assert not found.truncated and not found.malformed


def test_base_href_schemes_fragments_and_repeats() -> None:
    html = """<base href="https://site.example/media/">
      <img src="x.png#frag"><img src="x.png"><img src='X.PNG'>
      <img src="data:image/png;base64,AAAA"><img src="javascript:alert(1)">
      <img src="ftp://site.example/f.png"><img src="//cdn.example/proto.png">
      <a href="mailto:a@b.example">mail</a><img src="http://[::1"><img src="http://h:99999/x.png">
      <img src="  \n /spaced.png\t ">"""
    found = extract_media(html.encode(), "http://site.example/page", max_links=100)
    assert found.media == (
        "https://site.example/media/x.png",
        "https://site.example/media/X.PNG",
        "https://cdn.example/proto.png",  # against the base, not the page
        "https://site.example/spaced.png",
    )


def test_reading_stops_at_max_links_and_says_so() -> None:
    html = "".join(f'<a href="/p{i}">p</a><img src="/i{i}.png">' for i in range(100_000))
    found = extract_media(html, "http://site.example/", max_links=5000)
    assert found.truncated
    assert found.references == 5000
    assert len(found.media) + len(found.pages) == 5000
    whole = extract_media(html[:2000], "http://site.example/", max_links=5000)
    assert not whole.truncated


def test_garbage_and_unclosed_markup_never_raise() -> None:
    samples = [
        b"\x00\xff\xfe<img src=\x00a.png>",
        b"<![if !supportLists]><img src=a.png><![endif]>",
        b"<img src='a.png' <<<<>>> <a href=b.jpg <a href=c.jpg>",
        b"<picture><source srcset=",
        b"<!-- never closed <img src=hidden.png>",
        b"<svg><image href=x.png></svg><script><img src=in-script.png></script>",
        bytes(range(256)) * 100,
    ]
    for sample in samples:
        found = extract_media(sample, "http://site.example/", max_links=50)
        assert found.references <= 50
        assert all(url.startswith("http://site.example/") for url in found.media)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000) | st.text(alphabet="<>/=\"' abcimgsrchef.pnj#&;!-[]", max_size=500))
def test_any_input_extracts_without_raising(data: bytes | str) -> None:
    found = extract_media(data, "https://site.example/dir/", max_links=20)
    assert found.references <= 20
    for url in found.media + found.pages:
        assert url.startswith(("http://", "https://")) and "#" not in url


def test_srcset_candidates_follow_the_html_parsing_rules() -> None:
    assert srcset_urls("a.jpg 1x, b.jpg 2x,c.jpg") == ["a.jpg", "b.jpg", "c.jpg"]
    assert srcset_urls(" a.jpg 100w (x, y), b.jpg") == ["a.jpg", "b.jpg"]
    assert srcset_urls("a,b.jpg 1x") == ["a,b.jpg"]
    assert srcset_urls(",,  ,") == []


def test_media_urls_are_told_apart_by_path_extension() -> None:
    assert is_media_url("https://a.example/x/Photo.JPG")
    assert is_media_url("https://a.example/v.mp4?token=1")
    assert not is_media_url("https://a.example/page.html?img=x.jpg")
    assert absolute("../up.png", "https://a.example/b/c/") == "https://a.example/b/up.png"
    assert absolute("x" * 5000, "https://a.example/") is None
