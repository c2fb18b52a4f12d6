import { memo } from "preact/compat";
import { useEffect, useRef, useState } from "preact/hooks";
import type { Person, PresenceOf, SearchResult } from "../bindings";
import { detailText, initials, presenceClass, presenceText, type Presences } from "../colleagues";
import { t } from "../i18n";

interface Props {
  favourites: Person[];
  presences: Presences;
  /// Why presence polling is failing (what is shown may be out of date), if it is.
  presenceError: string | null;
  /// Searches the directory (the panel keeps only the latest answer).
  search: (text: string) => Promise<SearchResult>;
  /// A photo as a `data:` URL, or null when they have none.
  loadPhoto: (id: string) => Promise<string | null>;
  /// Calls the person, or transfers the call on screen to them when `transferring`.
  onCall: (person: Person) => void;
  /// A call is up: the people's button transfers it (blind) instead of calling.
  transferring: boolean;
  onFavourite: (person: Person, favourite: boolean) => void;
  /// The people on show changed (their presence is wanted).
  onShown: (people: Person[]) => void;
}

type Found = { state: "idle" } | { state: "searching" } | { state: "done"; people: Person[] } | { state: "failed"; message: string };

const NO_ONE: Person[] = [];

/// Typing pauses this long before a search goes out.
const SEARCH_DELAY_MS = 300;

/// Colleagues: favourites, or the people a search found; each with photo, presence, call and
/// favourite buttons.
export const Colleagues = memo(function Colleagues({ favourites, presences, presenceError, search, loadPhoto, onCall, transferring, onFavourite, onShown }: Props) {
  const [text, setText] = useState("");
  const [found, setFound] = useState<Found>({ state: "idle" });
  const latest = useRef(0);
  const photos = usePhotos(loadPhoto);

  useEffect(() => {
    const query = text.trim();
    const ask = ++latest.current;
    if (!query) {
      setFound({ state: "idle" });
      return;
    }
    const timer = setTimeout(() => {
      setFound({ state: "searching" });
      search(query).then(
        (result) => ask === latest.current && setFound({ state: "done", people: result.people }),
        (e) => ask === latest.current && setFound({ state: "failed", message: e instanceof Error ? e.message : String(e) }),
      );
    }, SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [text]);

  const results = found.state === "done" ? found.people : NO_ONE;
  const shown = text.trim() ? results : favourites;
  useEffect(() => onShown(shown), [shown]);

  let status = "";
  if (found.state === "searching") status = t("colleagues.searching");
  else if (found.state === "failed") status = t("colleagues.failed", { error: found.message });
  else if (found.state === "done") status = results.length === 0 ? t("colleagues.noneFound") : t("colleagues.found", { count: results.length });

  const favouriteIds = new Set(favourites.map((p) => p.id));
  return (
    <section class="colleagues" aria-labelledby="colleagues-title" data-testid="colleagues">
      <h2 id="colleagues-title">{t("colleagues.title")}</h2>
      <label for="colleague-search">{t("colleagues.searchLabel")}</label>
      <input
        id="colleague-search"
        type="search"
        autocomplete="off"
        spellcheck={false}
        data-testid="colleague-search"
        placeholder={t("colleagues.searchPlaceholder")}
        value={text}
        onInput={(e) => setText((e.target as HTMLInputElement).value)}
      />
      <p class={`hint${found.state === "failed" ? " problem" : ""}`} role="status" aria-live="polite" data-testid="colleagues-status">
        {status}
      </p>
      {presenceError && (
        <p class="hint problem" data-testid="presence-error">
          {t("colleagues.presenceStale", { error: presenceError })}
        </p>
      )}
      <h3 class="list-title">{text.trim() ? t("colleagues.results") : t("colleagues.favourites")}</h3>
      {shown.length === 0 && !text.trim() && <p class="empty">{t("colleagues.noFavourites")}</p>}
      <ul class="people">
        {shown.map((person) => (
          <Row
            key={person.id}
            person={person}
            presence={presences.get(person.id)}
            photo={photos.get(person.id)}
            onVisible={() => photos.want(person.id)}
            favourite={favouriteIds.has(person.id)}
            onCall={() => onCall(person)}
            transferring={transferring}
            onFavourite={(on) => onFavourite(person, on)}
          />
        ))}
      </ul>
    </section>
  );
});

interface RowProps {
  person: Person;
  presence: PresenceOf | undefined;
  photo: string | null | undefined;
  onVisible: () => void;
  favourite: boolean;
  onCall: () => void;
  transferring: boolean;
  onFavourite: (favourite: boolean) => void;
}

function Row({ person, presence, photo, onVisible, favourite, onCall, transferring, onFavourite }: RowProps) {
  const ref = useRef<HTMLLIElement>(null);
  // Photos load as rows scroll into view: 650 favourites do not mean 650 requests at once.
  useEffect(() => {
    const row = ref.current;
    if (!row || typeof IntersectionObserver === "undefined") {
      onVisible();
      return;
    }
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        onVisible();
        observer.disconnect();
      }
    });
    observer.observe(row);
    return () => observer.disconnect();
  }, [person.id]);
  const state = presenceText(presence);
  return (
    <li ref={ref} class="person" data-testid={`person-${person.id}`}>
      <span class="avatar" aria-hidden="true">
        {photo ? <img src={photo} alt="" width={40} height={40} /> : initials(person.name)}
        <span class={`presence-dot presence-${presenceClass(presence?.availability)}`} />
      </span>
      <div class="who">
        <span class="name">{person.name}</span>
        <span class="presence-text" data-testid="presence">
          {state}
        </span>
        <span class="detail">{detailText(person)}</span>
      </div>
      <button
        type="button"
        class="star"
        aria-pressed={favourite}
        aria-label={t("colleagues.favourite", { name: person.name })}
        title={t("colleagues.favourite", { name: person.name })}
        data-testid="favourite"
        onClick={() => onFavourite(!favourite)}
      >
        {favourite ? "★" : "☆"}
      </button>
      {/* Not `disabled` when there is no address: it stays focusable, and says why. */}
      <button
        type="button"
        class="call"
        aria-disabled={!person.dial}
        aria-describedby={person.dial ? undefined : `why-${person.id}`}
        title={person.dial ?? undefined}
        aria-label={t(transferring ? "colleagues.transferWho" : "colleagues.callWho", { name: person.name, state })}
        data-testid="call-colleague"
        onClick={() => person.dial && onCall()}
      >
        {t(transferring ? "colleagues.transfer" : "colleagues.call")}
      </button>
      {!person.dial && (
        <span id={`why-${person.id}`} class="visually-hidden">
          {t("colleagues.cannotDial", { reason: person.dialError ?? "" })}
        </span>
      )}
    </li>
  );
}

/// Photos by id, fetched on demand, at most four at a time; `null` once known to be none.
function usePhotos(load: (id: string) => Promise<string | null>) {
  const [photos, setPhotos] = useState<ReadonlyMap<string, string | null>>(new Map());
  const queue = useRef<{ waiting: string[]; asked: Set<string>; running: number }>({ waiting: [], asked: new Set(), running: 0 });
  const pump = () => {
    const q = queue.current;
    while (q.running < 4 && q.waiting.length > 0) {
      const id = q.waiting.shift()!;
      q.running++;
      load(id)
        .catch(() => null)
        .then((photo) => {
          q.running--;
          setPhotos((known) => new Map(known).set(id, photo));
          pump();
        });
    }
  };
  return {
    get: (id: string) => photos.get(id),
    want: (id: string) => {
      const q = queue.current;
      if (q.asked.has(id)) return;
      q.asked.add(id);
      q.waiting.push(id);
      pump();
    },
  };
}
