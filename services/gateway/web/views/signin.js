// Sign in, or create an account. The problem identity answers with is shown as it is written,
// with each field's message beside the field.

import { h } from "../dom.js";
import { signIn } from "../session.js";

export function signin() {
  let creating = false;
  const error = h("div", { role: "alert", "aria-live": "assertive" });
  const field = (id, label, attrs) =>
    h("div", { class: "field" }, h("label", { for: id }, label), h("input", { id, name: id, required: true, ...attrs }), h("span", { class: "field-error", id: `${id}-error` }));
  const name = field("name", "Name", { autocomplete: "name", maxlength: 100 });
  const email = field("email", "Email", { type: "email", autocomplete: "email" });
  const password = field("password", "Password", { type: "password", autocomplete: "current-password", minlength: 8 });
  const submit = h("button", { type: "submit" }, "Sign in");
  const toggle = h("button", { type: "button", class: "ghost" }, "Create an account instead");
  name.hidden = true;
  name.querySelector("input").required = false;

  toggle.addEventListener("click", () => {
    creating = !creating;
    name.hidden = !creating;
    name.querySelector("input").required = creating;
    password.querySelector("input").autocomplete = creating ? "new-password" : "current-password";
    submit.textContent = creating ? "Create account" : "Sign in";
    toggle.textContent = creating ? "I have an account" : "Create an account instead";
  });

  const form = h("form", { class: "stack narrow", novalidate: false }, name, email, password, h("div", { class: "actions" }, submit, toggle), error);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.replaceChildren();
    for (const span of form.querySelectorAll(".field-error")) span.textContent = "";
    submit.disabled = true;
    const value = (f) => f.querySelector("input").value;
    const problem = await signIn(value(email).trim(), value(password), creating ? value(name).trim() : undefined);
    submit.disabled = false;
    if (!problem) {
      const back = sessionStorage.getItem("after-signin") || "#/";
      sessionStorage.removeItem("after-signin");
      location.hash = back;
      return;
    }
    error.replaceChildren(h("div", { class: "notice error" }, h("strong", {}, problem.title || "Could not sign in"), problem.detail ? ` ${problem.detail}` : ""));
    for (const { field: f, message } of problem.errors || []) {
      const span = form.querySelector(`#${CSS.escape(f)}-error`);
      if (span) span.textContent = message;
    }
  });
  return [h("h1", {}, "Sign in"), form];
}
