import { describe, expect, it } from "vitest";
import { effectiveTheme } from "./theme";

describe("the theme", () => {
  it("is the chosen one, or the system's while set to system", () => {
    expect(effectiveTheme("dark", false)).toBe("dark");
    expect(effectiveTheme("light", true)).toBe("light");
    expect(effectiveTheme("system", true)).toBe("dark");
    expect(effectiveTheme("system", false)).toBe("light");
  });
});
