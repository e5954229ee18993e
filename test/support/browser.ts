/**
 * A headless Chromium driven over its DevTools protocol (CDP) with Deno's built-in WebSocket: enough to load
 * a page, evaluate in it, wait for a condition, take a screenshot, and record what it requested and what went
 * wrong (console errors, uncaught exceptions, CSP violations, dialogs). No npm driver, no browser download.
 */
import { which } from "./binary.ts";

/** Chromium's executable: `$CHROMIUM`, else the first of the usual names on PATH (apt: chromium). */
export function findChromium(): string | undefined {
  const named = Deno.env.get("CHROMIUM");
  if (named) return which(named);
  return ["chromium", "chromium-browser", "google-chrome"].map((n) => which(n)).find((p) => p !== undefined);
}

// deno-lint-ignore no-explicit-any
type Json = any;
interface CdpEvent {
  method: string;
  params: Json;
}

export class BrowserPage {
  /** Every URL the page requested (Network.requestWillBeSent), in order. */
  readonly requests: string[] = [];
  /** Console errors, uncaught exceptions and error-level log entries (CSP violations among them). */
  readonly errors: string[] = [];
  /** Log or console entries that report a Content-Security-Policy violation, whatever their level. */
  readonly cspViolations: string[] = [];
  /** Messages of the JavaScript dialogs (alert, confirm, prompt) the page opened; each is dismissed. */
  readonly dialogs: string[] = [];

  #nextId = 1;
  #pending = new Map<number, PromiseWithResolvers<Json>>();
  #listeners = new Set<(e: CdpEvent) => void>();
  #sessionId = "";

  private constructor(
    private readonly child: Deno.ChildProcess,
    private readonly ws: WebSocket,
    private readonly profileDir: string,
    private readonly log: () => string,
  ) {
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`CDP ${JSON.stringify(msg.error)}`));
        else p?.resolve(msg.result);
      } else if (msg.sessionId === this.#sessionId) {
        this.#record(msg);
        for (const l of [...this.#listeners]) l(msg);
      }
    };
    ws.onclose = () => {
      for (const p of this.#pending.values()) p.reject(new Error(`browser connection closed:\n${log()}`));
      this.#pending.clear();
    };
  }

  /** Starts a headless Chromium with a fresh profile and opens one page of `width`×`height` CSS pixels. */
  static async launch(executable: string, size = { width: 1400, height: 900 }): Promise<BrowserPage> {
    const profileDir = Deno.makeTempDirSync({ prefix: "n2t-chromium-" });
    const child = new Deno.Command(executable, {
      args: [
        "--headless=new",
        "--no-sandbox", // containers and CI runners usually lack the user namespaces the sandbox needs
        "--disable-gpu",
        "--disable-dev-shm-usage", // a container's small /dev/shm crashes renderers
        "--no-first-run",
        "--remote-debugging-port=0", // Chromium picks a free port and prints it
        `--user-data-dir=${profileDir}`,
        `--window-size=${size.width},${size.height}`,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Keep reading stderr (a full pipe would stall Chromium) and pick the DevTools URL out of it.
    let log = "";
    const url = Promise.withResolvers<string>();
    (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) {
        log += decoder.decode(chunk, { stream: true });
        const m = log.match(/DevTools listening on (ws:\/\/\S+)/);
        if (m) url.resolve(m[1]);
      }
      url.reject(new Error(`chromium exited before listening:\n${log}`));
    })();
    const timer = setTimeout(() => url.reject(new Error(`no DevTools URL after 20 s:\n${log}`)), 20_000);
    try {
      const ws = new WebSocket(await url.promise);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("cannot connect to the DevTools WebSocket"));
      });
      const page = new BrowserPage(child, ws, profileDir, () => log);
      // One page target, attached in flat mode: its commands and events carry its sessionId on this socket.
      const { targetId } = await page.send("Target.createTarget", { url: "about:blank" }, false);
      page.#sessionId =
        (await page.send("Target.attachToTarget", { targetId, flatten: true }, false)).sessionId;
      for (const domain of ["Page", "Runtime", "Log", "Network"]) await page.send(`${domain}.enable`);
      await page.send("Emulation.setDeviceMetricsOverride", { ...size, deviceScaleFactor: 1, mobile: false });
      return page;
    } catch (e) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      Deno.removeSync(profileDir, { recursive: true });
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a CDP command (to the page's session unless `toPage` is false) and resolves with its result. */
  send(method: string, params: Json = {}, toPage = true): Promise<Json> {
    const id = this.#nextId++;
    const reply = Promise.withResolvers<Json>();
    this.#pending.set(id, reply);
    this.ws.send(JSON.stringify({ id, method, params, ...(toPage ? { sessionId: this.#sessionId } : {}) }));
    return reply.promise;
  }

  /** Resolves with the next page event named `method` (for which `match` holds); rejects after `timeoutMs`. */
  nextEvent(
    method: string,
    timeoutMs = 10_000,
    match: (params: Json) => boolean = () => true,
  ): Promise<Json> {
    return new Promise((resolve, reject) => {
      const listener = (e: CdpEvent) => {
        if (e.method !== method || !match(e.params)) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve(e.params);
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        reject(new Error(`no ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#listeners.add(listener);
    });
  }

  /** Navigates to `url` and waits for its load event. */
  async navigate(url: string, timeoutMs = 10_000): Promise<void> {
    const loaded = this.nextEvent("Page.loadEventFired", timeoutMs);
    const { errorText } = await this.send("Page.navigate", { url });
    if (errorText) throw new Error(`navigation to ${url} failed: ${errorText}`);
    await loaded;
  }

  /** The value of `expression` in the page (awaited if it is a promise); throws what the page threw. */
  async evaluate<T = Json>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) {
      throw new Error(
        `${expression}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`,
      );
    }
    return r.result.value;
  }

  /** Polls `expression` every 100 ms until it is truthy and returns that value; throws after `timeoutMs`. */
  async waitFor<T = Json>(expression: string, timeoutMs = 10_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.evaluate<T>(expression);
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A PNG of the viewport. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.send("Page.captureScreenshot", { format: "png" });
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }

  /** Shuts the browser down (killing it if it lingers) and removes its profile. */
  async close(): Promise<void> {
    // Browser.close lets Chromium stop its helper processes, which a SIGKILL would leave writing the profile.
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await this.send("Browser.close", {}, false).catch(() => this.child.kill("SIGKILL"));
    await this.child.status;
    clearTimeout(timer);
    this.ws.close();
    Deno.removeSync(this.profileDir, { recursive: true });
  }

  /** `await using page = await BrowserPage.launch(…)` closes it at the end of the scope, thrown or not. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #record({ method, params }: CdpEvent): void {
    const note = (text: string, isError: boolean) => {
      if (isError) this.errors.push(text);
      if (/Content.Security.Policy/i.test(text)) this.cspViolations.push(text);
    };
    switch (method) {
      case "Network.requestWillBeSent":
        this.requests.push(params.request.url);
        break;
      case "Runtime.consoleAPICalled": {
        const text = params.args.map((a: Json) => a.value ?? a.description ?? "").join(" ");
        note(`console.${params.type}: ${text}`, params.type === "error" || params.type === "assert");
        break;
      }
      case "Log.entryAdded":
        note(
          `log ${params.entry.source} ${params.entry.level}: ${params.entry.text} ${params.entry.url ?? ""}`,
          params.entry.level === "error",
        );
        break;
      case "Runtime.exceptionThrown":
        note(
          `exception: ${params.exceptionDetails.exception?.description ?? params.exceptionDetails.text}`,
          true,
        );
        break;
      case "Page.javascriptDialogOpening":
        this.dialogs.push(params.message);
        // An open dialog blocks the page's script, and with it every later evaluate: dismiss it.
        this.send("Page.handleJavaScriptDialog", { accept: false }).catch(() => {});
        break;
    }
  }
}
