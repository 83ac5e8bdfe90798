// Amparo review UI: reveal-for-a-few-seconds and keyboard shortcuts. No inline script (CSP).
"use strict";

(function () {
  const body = document.body;
  const csrf = body.dataset.csrf || "";

  function typing(target) {
    const tag = (target && target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function toggleHelp() {
    const help = document.getElementById("help");
    if (!help) return;
    if (help.open) help.close(); else help.showModal();
  }

  let revealTimer = null;

  function setStatus(text, isError) {
    const status = document.getElementById("reveal-status");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function shield(media) {
    if (media.dataset.kind === "video" && media.tagName === "VIDEO") {
      // Back to the blurred picture of one frame: the video leaves the page.
      const poster = document.createElement("img");
      poster.id = "media";
      poster.dataset.kind = "video";
      poster.dataset.shieldedSrc = media.dataset.shieldedSrc;
      poster.alt = "Blurred greyscale frame of the video";
      poster.src = media.dataset.shieldedSrc;
      media.pause();
      media.removeAttribute("src");
      media.load();
      media.replaceWith(poster);
      media = poster;
    } else if (media.dataset.kind === "photo") {
      media.src = media.dataset.shieldedSrc;
    }
    media.classList.add("shielded");
    media.classList.remove("revealed");
    setStatus("Blurred again.", false);
  }

  async function reveal() {
    let media = document.getElementById("media");
    const url = body.dataset.revealUrl;
    if (!media || !url || media.classList.contains("revealed")) return;
    let reply;
    try {
      reply = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf },
      });
    } catch (err) {
      setStatus("The reveal could not be sent; try again.", true);
      return;
    }
    const data = await reply.json().catch(() => ({}));
    if (!reply.ok) {
      setStatus((data.message || "The reveal was refused.") + (data.hint ? " " + data.hint : ""), true);
      return;
    }
    // The counts on the page follow the reveal's answer (the server's, not a guess).
    const count = document.getElementById("exposure-count");
    if (count && typeof data.revealed_today === "number") count.textContent = String(data.revealed_today);
    const left = document.getElementById("exposure-left");
    if (left && typeof data.remaining === "number") left.textContent = String(data.remaining);
    const seconds = Number(data.seconds || body.dataset.revealSeconds || 5);
    const show = function () {
      media.classList.remove("shielded");
      media.classList.add("revealed");
      let left = seconds;
      setStatus("Revealed: " + left + " s", false);
      clearInterval(revealTimer);
      revealTimer = setInterval(function () {
        left -= 1;
        if (left <= 0) {
          clearInterval(revealTimer);
          shield(media);
        } else {
          setStatus("Revealed: " + left + " s", false);
        }
      }, 1000);
    };
    if (media.dataset.kind === "photo") {
      media.addEventListener("load", show, { once: true });
      media.src = data.src + "&t=" + Date.now();
    } else {
      // The video itself, muted, only for the reveal.
      const video = document.createElement("video");
      video.id = "media";
      video.dataset.kind = "video";
      video.dataset.shieldedSrc = media.dataset.shieldedSrc;
      video.muted = true;
      video.autoplay = true;
      video.controls = true;
      video.src = data.src + "&t=" + Date.now();
      media.replaceWith(video);
      media = video;
      show();
    }
  }

  function decide(key) {
    const button = document.querySelector('#decide button[data-key="' + key + '"]');
    const form = document.getElementById("decide");
    if (button && form) form.requestSubmit(button);
  }

  function go(name) {
    const url = body.dataset[name];
    if (url) window.location.assign(url);
  }

  document.addEventListener("click", function (event) {
    const target = event.target.closest("[data-action]");
    if (!target) return;
    event.preventDefault();
    if (target.dataset.action === "reveal") reveal();
    if (target.dataset.action === "help") toggleHelp();
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const key = event.key;
    if (key === "?") { toggleHelp(); event.preventDefault(); return; }
    if (key === "Escape" && body.dataset.cancelUrl) { go("cancelUrl"); return; }
    if (key === "u") {
      const undo = document.getElementById("undo-form");
      if (undo) { undo.requestSubmit(); event.preventDefault(); }
      return;
    }
    if (!document.getElementById("decide")) return;
    if (["1", "2", "3", "4", "f", "e"].includes(key)) { decide(key); event.preventDefault(); }
    else if (key === "r") { reveal(); event.preventDefault(); }
    else if (key === "j") { go("nextUrl"); }
    else if (key === "k") { go("prevUrl"); }
    else if (key === "n") { const note = document.getElementById("note"); if (note) { note.focus(); event.preventDefault(); } }
  });
})();
