// ACTIVE lab page: the few lines of script the pages use; everything works without it too,
// except the live progress (the page then reloads itself every 5 s).
"use strict";

function byId(id) { return document.getElementById(id); }

function duration(s) {
  s = Math.max(0, Math.round(s));
  return s < 60 ? s + " s" : Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
}

// The progress page: poll the job's progress.json; reload when it is done or failed.
function watchProgress(panel) {
  const url = panel.dataset.url;
  async function poll() {
    try {
      const r = await fetch(url, { cache: "no-store", credentials: "same-origin" });
      if (r.ok) {
        const p = await r.json();
        if (p.status === "done" || p.status === "failed") { window.location.reload(); return; }
        byId("p-stage").textContent = p.stage;
        byId("status-badge").textContent = p.status === "running" ? "analysing" : "waiting";
        byId("status-badge").className = "badge " + p.status;
        const bar = byId("p-bar");
        if (p.percent !== null) { bar.value = p.percent; } else { bar.removeAttribute("value"); }
        byId("p-frames").textContent = p.frames_done + " of " + (p.frames_total || "?");
        byId("p-fps").textContent = p.frames_per_s ? p.frames_per_s.toFixed(1) + " frames/s" : "—";
        byId("p-eta").textContent = p.eta_s !== null ? duration(p.eta_s) : "—";
      }
    } catch (e) { /* the server restarts: try again */ }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 500);
}

// The upload form: say at once when a file is empty or too large (the server checks again).
function checkUpload(form) {
  form.addEventListener("submit", function (event) {
    const box = byId("upload-error");
    const max = Number(form.dataset.maxBytes || 0);
    const files = Array.from(byId("videos").files);
    let problem = "";
    if (files.length > Number(form.dataset.maxVideos || 1e9)) {
      problem = "at most " + form.dataset.maxVideos + " videos per sample";
    }
    for (const f of files) {
      if (f.size === 0) { problem = f.name + " is empty (0 bytes): choose the video file itself"; }
      else if (max && f.size > max) {
        problem = f.name + " is larger than the limit of " + form.dataset.maxText +
          " per video (the server's --max-upload-mb); nothing was stored";
      }
      if (problem) { break; }
    }
    if (problem) {
      event.preventDefault();
      box.innerHTML = "";
      const label = document.createElement("strong");
      label.textContent = "Videos: ";
      box.append(label, problem);
      box.hidden = false;
      const old = byId("form-error");
      if (old) { old.hidden = true; }
      return;
    }
    byId("submit").disabled = true;
    byId("uploading").hidden = false;
  });
}

// The report page: the full report's frame as tall as its content; print it alone.
function fitReport(frame) {
  function fit() {
    try {
      frame.style.height = frame.contentDocument.documentElement.scrollHeight + 20 + "px";
    } catch (e) { /* not loaded */ }
  }
  frame.addEventListener("load", fit);
  fit();
  const button = byId("print-report");
  if (button) {
    button.addEventListener("click", function () { frame.contentWindow.print(); });
  }
}

document.addEventListener("DOMContentLoaded", function () {
  const panel = byId("progress");
  if (panel) { watchProgress(panel); }
  const form = byId("upload");
  if (form) { checkUpload(form); }
  const frame = byId("report-frame");
  if (frame) { fitReport(frame); }
  for (const f of document.querySelectorAll("form[data-confirm]")) {
    f.addEventListener("submit", function (event) {
      if (!window.confirm(f.dataset.confirm)) { event.preventDefault(); }
    });
  }
});
