// The codec preference list of `media.codecs` ("opus,g722,pcmu,pcma"), as the settings edit it.
// Pure: the tests give it lists.

/// The codecs Switchboard has, in its own order of preference.
export const CODECS = ["opus", "g722", "pcmu", "pcma"] as const;
export type Codec = (typeof CODECS)[number];

/// Their names as a telephony person knows them (the same in every language).
export const CODEC_NAMES: Record<Codec, string> = {
  opus: "Opus",
  g722: "G.722",
  pcmu: "G.711 µ-law (PCMU)",
  pcma: "G.711 A-law (PCMA)",
};

const isCodec = (name: string): name is Codec => (CODECS as readonly string[]).includes(name);

/// The enabled codecs in order, then the disabled ones in Switchboard's order.
export function codecRows(list: string): { codec: Codec; enabled: boolean }[] {
  const enabled = [...new Set(list.split(",").map((c) => c.trim().toLowerCase()).filter(isCodec))];
  const disabled = CODECS.filter((c) => !enabled.includes(c));
  return [...enabled.map((codec) => ({ codec, enabled: true })), ...disabled.map((codec) => ({ codec, enabled: false }))];
}

const joined = (rows: { codec: Codec; enabled: boolean }[]) =>
  rows.filter((r) => r.enabled).map((r) => r.codec).join(",");

/// The list with `codec` switched on (at the end of the enabled ones) or off; `null` when that
/// would leave none.
export function toggleCodec(list: string, codec: Codec, on: boolean): string | null {
  const rows = codecRows(list).filter((r) => r.codec !== codec);
  const enabledCount = rows.filter((r) => r.enabled).length;
  if (!on && enabledCount === 0) return null;
  const row = { codec, enabled: on };
  const at = on ? enabledCount : rows.length;
  rows.splice(at, 0, row);
  return joined(rows);
}

/// The list with an enabled `codec` moved one place earlier (`-1`) or later (`+1`); `null` when
/// it cannot move that way.
export function moveCodec(list: string, codec: Codec, by: -1 | 1): string | null {
  const enabled = codecRows(list).filter((r) => r.enabled).map((r) => r.codec);
  const from = enabled.indexOf(codec);
  const to = from + by;
  if (from < 0 || to < 0 || to >= enabled.length) return null;
  [enabled[from], enabled[to]] = [enabled[to], enabled[from]];
  return enabled.join(",");
}
