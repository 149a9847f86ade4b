// edge-oauth's browser client: the ES-module face of the wasm crate (www/src/lib.rs), which does
// the work. This file loads the wasm once and turns the change callback into events.
import init, { Client } from './edge_oauth_browser.js';

let loading;

/** A client for `options.issuer` (README.md). Loads the wasm on first use. */
export async function createClient(options) {
  await (loading ??= init());
  const events = new EventTarget();
  const client = await Client.create(options, (tokens) =>
    events.dispatchEvent(new CustomEvent('tokens', { detail: tokens })));
  client.addEventListener = events.addEventListener.bind(events);
  client.removeEventListener = events.removeEventListener.bind(events);
  return client;
}
