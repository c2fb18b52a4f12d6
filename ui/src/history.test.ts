import { describe, expect, it } from "vitest";
import type { CallRecord } from "./bindings";
import { historyKind, kindText, resultText, whenText } from "./history";

const call = (over: Partial<CallRecord>): CallRecord => ({
  direction: "outgoing",
  peer: "sip:demo@127.0.0.1:5062",
  displayName: null,
  startedMs: 0,
  durationSecs: 0,
  answered: false,
  cause: "local",
  detail: "",
  ...over,
});

describe("the recent-calls list", () => {
  it("tells missed calls from answered and outgoing ones", () => {
    expect(historyKind(call({ direction: "incoming", answered: false, cause: "cancelled" }))).toBe("missed");
    expect(kindText(call({ direction: "incoming", answered: true }))).toBe("Incoming");
    expect(historyKind(call({ direction: "outgoing", answered: false }))).toBe("outgoing");
    const declined = call({ direction: "incoming", answered: false, cause: "declined", detail: "603" });
    expect(historyKind(declined)).toBe("incoming");
    expect(resultText(declined)).toBe("Declined (603)");
  });

  it("gives the length of answered calls and the reason for the rest", () => {
    expect(resultText(call({ answered: true, durationSecs: 62 }))).toBe("1:02");
    expect(resultText(call({ cause: "busy", detail: "486 Busy Here" }))).toBe("Busy (486 Busy Here)");
    expect(resultText(call({ direction: "incoming", cause: "cancelled" }))).toBe("Not answered");
    const transferred = call({ direction: "incoming", answered: true, durationSecs: 95, cause: "transferred", detail: "Megan Bowen" });
    expect(resultText(transferred)).toBe("1:35 · transferred to Megan Bowen");
  });

  it("says today's time, yesterday, or the date", () => {
    const now = new Date(2026, 10, 26, 15, 0).getTime();
    expect(whenText(new Date(2026, 10, 26, 9, 5).getTime(), now, "en-GB")).toBe("09:05");
    expect(whenText(new Date(2026, 10, 25, 23, 59).getTime(), now, "en-GB")).toBe("Yesterday 23:59");
    expect(whenText(new Date(2026, 10, 2, 8, 0).getTime(), now, "en-GB")).toBe("2 Nov 08:00");
  });
});
