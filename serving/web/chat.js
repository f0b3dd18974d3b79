// The chat page's behaviour. It talks to the model only through TF Serving's REST API, so it works
// in front of serve.py and of the tensorflow/serving image alike:
//   GET  /v1/models/<name>             the version shown in the corner
//   GET  /v1/models/<name>/metadata    which signatures and controls the export has
//   POST /v1/models/<name>:predict     "settings" (the controls' defaults), "character" (name, greeting)
//                                      and "chat" (the history -> a reply)
// Query parameters: ?model=chatbot (the served model's name), ?api=http://host:8501 (another origin).
// The conversation lives in this tab only: every turn sends the whole history; the server keeps nothing.
(() => {
  "use strict";
  const params = new URLSearchParams(location.search);
  const api = (params.get("api") || "").replace(/\/+$/, "");
  const model = params.get("model") || "chatbot";
  const base = `${api}/v1/models/${encodeURIComponent(model)}`;
  const MAX_TURNS = 16;  // The latest turns sent (the model keeps what it was trained to see).
  const $ = (id) => document.getElementById(id);
  // `pending`: a message sent before the page finished loading (its controls not yet filled): held, and
  // sent as soon as they are, never dropped.
  const state = { history: [], sending: false, title: "챗봇", greeting: "", composing: false, loaded: false, pending: false };

  async function call(path, body) {
    const options = body === undefined ? {} :
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    let response;
    try {
      response = await fetch(base + path, options);
    } catch (error) {
      throw new Error("서버에 연결할 수 없어요. 서버가 켜져 있는지 확인한 뒤 다시 보내 주세요.");
    }
    let data = null;
    try { data = await response.json(); } catch (error) { /* Not JSON: reported below by status. */ }
    if (!response.ok) {
      const detail = data && data.error ? data.error : response.statusText;
      throw new Error(`서버가 요청을 거절했어요 (${response.status}): ${detail}`);
    }
    return data;
  }

  function setStatus(text, isError = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", isError);
    $("status").setAttribute("role", isError ? "alert" : "status");
  }

  function addBubble(speaker, text) {
    const item = document.createElement("li");
    item.className = speaker;
    item.dataset.speaker = speaker;
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = speaker === "user" ? "나: " : `${state.title}: `;
    item.append(who, document.createTextNode(text));
    $("messages").append(item);
    item.scrollIntoView({ block: "nearest" });
    return item;
  }

  function controls() {
    const number = (id, parse) => parse($(id).value);
    const seed = $("seed").value.trim();
    const values = {
      strategy: $("strategy").value,
      temperature: number("temperature", parseFloat),
      top_k: number("top_k", (v) => parseInt(v, 10)),
      top_p: number("top_p", parseFloat),
      max_length: number("max_length", (v) => parseInt(v, 10)),
      seed: seed === "" ? Math.floor(Math.random() * 2 ** 31) : parseInt(seed, 10),
    };
    for (const [name, value] of Object.entries(values)) {
      if (typeof value === "number" && !Number.isFinite(value)) throw new Error(`설정 '${name}'에 숫자를 넣어 주세요.`);
    }
    if (state.hasRetrieval) values.retrieval = $("retrieval").checked;
    return values;
  }

  async function send() {
    const input = $("input");
    const text = input.value.trim();
    if (!text || state.sending) return;
    if (!state.loaded) {
      state.pending = true;
      setStatus("준비하는 중이에요. 준비되면 바로 보낼게요.");
      return;
    }
    let request;
    try {
      request = controls();
    } catch (error) {
      setStatus(error.message, true);
      return;
    }
    state.sending = true;
    $("send").disabled = true;
    setStatus(`${state.title}: 답장을 쓰는 중…`);
    const bubble = addBubble("user", text);
    input.value = "";
    const history = [...state.history, text].slice(-MAX_TURNS);
    try {
      const data = await call(":predict", { signature_name: "chat", inputs: { history: [history], ...request } });
      const reply = data.outputs[0];
      state.history = [...history, reply];
      addBubble("bot", reply);
      setStatus("");
    } catch (error) {
      bubble.remove();  // Not part of the conversation: the text goes back to the box, to send again.
      input.value = input.value ? `${text}\n${input.value}` : text;
      setStatus(error.message, true);
    } finally {
      state.sending = false;
      $("send").disabled = false;
      input.focus();
    }
  }

  function reset() {
    state.history = [];
    $("messages").replaceChildren();
    if (state.greeting) addBubble("bot", state.greeting);
    setStatus("새 대화를 시작했어요.");
    $("input").focus();
  }

  // Enter sends, Shift+Enter makes a new line. While an IME composes a Hangul syllable, the Enter
  // that commits it arrives with isComposing (keyCode 229 on some platforms) and must not send:
  // the platform sends another Enter once the syllable is committed, and that one sends.
  function isSendKey(event) {
    return event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229 && !state.composing;
  }

  // The controls start at the export's own decoding defaults (its "settings" signature).
  async function fillControls() {
    const served = (await call(":predict", { signature_name: "settings", instances: [""] })).predictions[0];
    $("strategy").value = served.strategy;
    for (const id of ["temperature", "top_k", "top_p", "max_length"]) $(id).value = String(served[id]);
    $("retrieval").checked = Boolean(served.retrieval);
  }

  async function load() {
    try {
      const status = await call("");
      const version = status.model_version_status && status.model_version_status[0];
      $("version").textContent = version ? `${model} · 버전 ${version.version}` : model;
      const metadata = await call("/metadata");
      const signatures = metadata.metadata.signature_def.signature_def;
      state.hasRetrieval = Boolean(signatures.chat && signatures.chat.inputs && signatures.chat.inputs.retrieval);
      $("retrieval-control").hidden = !state.hasRetrieval;
      if (signatures.settings) await fillControls();
      if (signatures.character) {
        const answer = await call(":predict", { signature_name: "character", instances: [""] });
        state.title = answer.predictions[0].name || state.title;
        state.greeting = answer.predictions[0].greeting || "";
      }
      document.title = $("title").textContent = state.title;
      if (state.greeting && !state.history.length && !$("messages").children.length) addBubble("bot", state.greeting);
      setStatus("");
    } catch (error) {
      setStatus(error.message, true);
    } finally {
      state.loaded = true;
    }
    if (state.pending) {
      state.pending = false;
      await send();
    }
  }

  const input = $("input");
  input.addEventListener("compositionstart", () => { state.composing = true; });
  input.addEventListener("compositionend", () => { state.composing = false; });
  input.addEventListener("keydown", (event) => {
    if (!page.isSendKey(event)) return;  // Other keys, Shift+Enter, and the IME's own Enter.
    event.preventDefault();
    send();
  });
  $("composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
  $("reset").addEventListener("click", reset);
  const page = { isSendKey, send, reset, state };
  window.chatPage = page;  // For tests and the curious: the key rule and the state.
  load();
})();
