;;; actions.el --- "Fix with AI" in eglot without resolve, in batch  -*- lexical-binding: t -*-
;; Environment: SNIPPET (the README's init code), FILE (calc.py with a bug on line 2), OUT.
;; The model is slow (the stub waits 3 s): the listing must come in time, and the action's
;; command must bring the edit once computed.

(load (expand-file-name "common.el" (file-name-directory load-file-name)) nil t)
(setq eglot-confirm-server-initiated-edits nil)  ; no prompt in batch: the user chose the fix

(coder-lsp-test-run
 (coder-lsp-test-open (getenv "FILE"))
 (coder-lsp-test-note "connected" (if (eglot-current-server) t :json-false))
 (let* ((server (eglot-current-server))
        (at (list :line 1 :character 11))
        (range (list :start at :end at))
        (started nil)
        (actions nil)
        (deadline (+ (float-time) 60))
        fix)
   ;; As a user would: M-x eglot-code-actions again while the engine still starts (the
   ;; server then lists nothing, and says why).
   (while (and (not fix) (< (float-time) deadline))
     (setq started (float-time))
     (setq actions (jsonrpc-request
                    server :textDocument/codeAction
                    (list :textDocument (eglot--TextDocumentIdentifier)
                          :range range
                          :context (list :diagnostics
                                         (vector (list :range range
                                                       :message "add subtracts"))
                                         :triggerKind 1))))
     (setq fix (seq-find (lambda (a) (string-prefix-p "Fix with AI" (plist-get a :title)))
                         actions))
     (unless fix (accept-process-output nil 0.5)))
   (coder-lsp-test-note "listing_ms" (* 1000 (- (float-time) started)))
   (coder-lsp-test-note "titles" (vconcat (mapcar (lambda (a) (plist-get a :title))
                                                  actions)))
   (when fix
     (let ((command (plist-get fix :command)))
       (coder-lsp-test-note "command" (plist-get command :command))
       (eglot-execute-command server (plist-get command :command)
                              (plist-get command :arguments))))
   (coder-lsp-test-wait 30 (lambda () (string-match-p "a \\+ b" (buffer-string))))
   (coder-lsp-test-note "text" (buffer-substring-no-properties (point-min) (point-max)))))
