import { describe, expect, it } from "vitest";
import type { Person } from "./bindings";
import { applyReport, detailText, initials, presenceClass, presenceText, sameIds, watchedIds } from "./colleagues";
import { setLanguage } from "./i18n";

const person = (id: string, name: string, extra: Partial<Person> = {}): Person => ({
  id, name, username: `${name.split(" ")[0]}@contoso.example`, mail: null, jobTitle: null, department: null,
  dial: `sip:${id}@sbc.example`, dialError: null, ...extra,
});

describe("the colleagues panel", () => {
  it("keeps the latest presence of each colleague across reports", () => {
    let known = applyReport(new Map(), {
      changed: [
        { id: "a", availability: "Available", activity: "Available" },
        { id: "b", availability: "Busy", activity: "InACall" },
      ],
      own: null,
      error: null,
    });
    const unchanged = applyReport(known, { changed: [], own: null, error: "throttled" });
    expect(unchanged).toBe(known);
    known = applyReport(known, { changed: [{ id: "a", availability: "Away", activity: "Away" }], own: null, error: null });
    expect(known.get("a")?.availability).toBe("Away");
    expect(known.get("b")?.activity).toBe("InACall");
  });

  it("colours presence as Teams does", () => {
    expect(presenceClass("Available")).toBe("available");
    expect(presenceClass("AvailableIdle")).toBe("available");
    expect(presenceClass("BeRightBack")).toBe("away");
    expect(presenceClass("BusyIdle")).toBe("busy");
    expect(presenceClass("DoNotDisturb")).toBe("dnd");
    expect(presenceClass("Offline")).toBe("offline");
    expect(presenceClass("PresenceUnknown")).toBe("unknown");
    expect(presenceClass(undefined)).toBe("unknown");
  });

  it("names the activity, else the availability, in the window's language", async () => {
    expect(presenceText({ id: "a", availability: "Busy", activity: "InACall" })).toBe("In a call");
    expect(presenceText({ id: "a", availability: "Busy", activity: "SomethingNew" })).toBe("Busy");
    expect(presenceText({ id: "a", availability: "Odd", activity: "Odder" })).toBe("Presence unknown");
    expect(presenceText(undefined)).toBe("Presence unknown");
    await setLanguage("ru");
    expect(presenceText({ id: "a", availability: "Busy", activity: "InACall" })).toBe("Разговаривает");
    await setLanguage("en");
  });

  it("watches favourites and results once each, favourites first", () => {
    const adele = person("1", "Adele Vance");
    const megan = person("2", "Megan Bowen");
    expect(watchedIds([adele], [megan, adele])).toEqual(["1", "2"]);
    expect(sameIds(["1", "2"], ["1", "2"])).toBe(true);
    expect(sameIds(["1", "2"], ["2", "1"])).toBe(false);
  });

  it("shows initials without a photo and the work or address beneath the name", () => {
    expect(initials("Adele Vance")).toBe("AV");
    expect(initials("Megan Bowen-Smith")).toBe("MS");
    expect(initials("ÉLODIE")).toBe("É");
    expect(initials("  ")).toBe("?");
    expect(detailText(person("1", "Adele Vance", { jobTitle: "Retail Manager", department: "Retail" }))).toBe("Retail Manager, Retail");
    expect(detailText(person("1", "Adele Vance"))).toBe("Adele@contoso.example");
  });
});
