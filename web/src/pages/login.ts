// Login with an API token (drover token create): checked against GET /whoami, then kept in
// this tab's sessionStorage.
import { ApiError, get, storeToken, type Whoami } from "../api";
import { h } from "../dom";

export function loginPage(done: () => void, error = ""): HTMLElement {
  const input = h("input", {
    type: "password",
    id: "token",
    name: "token",
    autocomplete: "off",
    placeholder: "drover_…",
    required: true,
  }) as HTMLInputElement;
  const message = h("p", { class: "error", role: "alert" }, error);
  const form = h(
    "form",
    { class: "login" },
    h("h1", {}, "drover"),
    h("label", { for: "token" }, "API token"),
    input,
    h("button", { type: "submit" }, "Log in"),
    message,
    h(
      "p",
      { class: "hint" },
      "A token from drover token create (docs/api/operator.md). It is kept in this tab only, never in a URL.",
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    storeToken(input.value.trim());
    try {
      await get<Whoami>("/whoami");
      done();
    } catch (e) {
      storeToken(null);
      message.textContent =
        e instanceof ApiError && e.status === 401 ? "This token is not valid (unknown, expired or revoked)." : String(e instanceof Error ? e.message : e);
    }
  });
  return h("div", { class: "login-page" }, form);
}
